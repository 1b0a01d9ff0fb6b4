"""Train the models decoding uses.

    python train.py stage=pretrain domain=dna [trainer.max_steps=N] [output_dir=DIR]
    python train.py stage=value domain=dna reward=hepg2_motif [value_training.num_rollouts=N] [output_dir=DIR]

pretrain: the domain's diffusion model on its DataModule -> DIR/pretrained.ckpt (+ heldout_3mer.json).
value:    SVDD-MC: roll out the frozen pre-trained model once (DIR/rollouts.pt, with rewards), then
          regress v(x_t, t) onto each trajectory's final reward -> DIR/value.ckpt.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from callbacks.shard_writer import ShardWriter, read_shards
from datamodules.rollouts import RolloutDataModule
from datamodules.seeds import SeedDataModule
from svdd_lightning.build import build_with_checkpoint, split_checkpoint
from svdd_lightning.cli import friendly_errors, make_trainer, quiet_lightning
from svdd_lightning.errors import ConfigError
from svdd_lightning.loggers import build_logger
from svdd_lightning.modules.pretrain import DiffusionPretrainModule
from svdd_lightning.modules.rollouts import RolloutModule
from svdd_lightning.modules.value import ValueRegressionModule

STAGES = ("pretrain", "value")
ROLLOUT_SEED_OFFSET = 1_000_000  # rollouts never reuse the sample seeds of decode runs


def run_pretrain(cfg: DictConfig, output_dir: Path) -> Path:
    data = instantiate(cfg.data)
    data.setup("fit")
    node, _ = split_checkpoint(cfg.diffusion)
    diffusion = instantiate(node)
    module = DiffusionPretrainModule(diffusion=diffusion, domain=cfg.domain.name, input_key=cfg.domain.input_key,
                                     lr=cfg.pretrain.lr,
                                     warmup_steps=cfg.pretrain.warmup_steps)
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, name=f"pretrain-{cfg.domain.name}")
    trainer = make_trainer(cfg.trainer, max_steps=cfg.trainer.max_steps, logger=logger or False,
                           val_check_interval=min(cfg.pretrain.val_check_interval, cfg.trainer.max_steps),
                           check_val_every_n_epoch=None, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    path = output_dir / "pretrained.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        instantiate(cfg.naturalness).write_reference(data, output_dir)
    return path


def write_rollouts(cfg: DictConfig, output_dir: Path, diffusion, reward) -> Path:
    vt = cfg.value_training
    module = RolloutModule(diffusion=diffusion, reward=reward, seed=cfg.seed + ROLLOUT_SEED_OFFSET,
                           save_every=vt.save_every)
    writer = ShardWriter(directory=output_dir / ".rollout-shards")
    trainer = make_trainer(cfg.trainer, logger=False, callbacks=[writer], inference_mode=True)
    trainer.predict(module, datamodule=SeedDataModule(num_samples=vt.num_rollouts, batch_size=vt.rollout_batch_size),
                    return_predictions=False)
    trainer.strategy.barrier()
    path = output_dir / "rollouts.pt"
    if trainer.is_global_zero:
        merged = read_shards(writer.shard_paths())
        if not torch.isfinite(merged["rewards"]).all():
            raise ConfigError("the reward returned NaN or inf on some rollouts; fix the reward before training a value.")
        partial = path.with_suffix(".partial")
        torch.save({"states": merged["states"], "steps": torch.tensor(module.steps), "rewards": merged["rewards"],
                    "num_steps": diffusion.num_steps, "seed": cfg.seed + ROLLOUT_SEED_OFFSET}, partial)
        partial.replace(path)
        r = merged["rewards"]
        print(f"rollouts: {len(r)} trajectories x {len(module.steps)} states -> {path} "
              f"(reward median {r.median():.3f}, q90 {r.quantile(0.9):.3f})")
    trainer.strategy.barrier()
    return path


def run_value(cfg: DictConfig, output_dir: Path) -> Path:
    vt = cfg.value_training
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    reward = instantiate(cfg.reward)
    rollouts = Path(vt.rollouts) if vt.rollouts else write_rollouts(cfg, output_dir, diffusion, reward)
    node, _ = split_checkpoint(cfg.value)
    value = instantiate(node)
    reward_name = hydra.core.hydra_config.HydraConfig.get().runtime.choices.get("reward", "custom")
    module = ValueRegressionModule(value=value, domain=cfg.domain.name, reward_name=reward_name, lr=vt.lr)
    data = RolloutDataModule(path=str(rollouts), batch_size=vt.batch_size, seed=cfg.seed)
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, name=f"value-{cfg.domain.name}-{reward_name}")
    trainer = make_trainer(cfg.trainer, max_steps=cfg.trainer.max_steps, logger=logger or False,
                           val_check_interval=min(500, cfg.trainer.max_steps), check_val_every_n_epoch=None,
                           enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    path = output_dir / "value.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return path


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    quiet_lightning()
    if cfg.stage not in STAGES:
        raise ConfigError(f"stage={cfg.stage} is unknown; use one of {', '.join(STAGES)}.")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = run_pretrain(cfg, output_dir) if cfg.stage == "pretrain" else run_value(cfg, output_dir)
    print(f"{cfg.stage}: wrote {path}")


if __name__ == "__main__":
    main()
