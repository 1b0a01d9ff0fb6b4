"""Train the models decoding uses.

    python train.py stage=pretrain domain=dna [trainer.max_steps=N] [output_dir=DIR]
    python train.py stage=value domain=dna reward=hepg2_motif [value_training.num_rollouts=N] [output_dir=DIR]
    python train.py stage=oracle domain=dna data.path=TABLE.csv data.label_columns=[HepG2] [output_dir=DIR]
    python train.py stage=oracle domain=image [trainer.max_steps=N] [output_dir=DIR]

pretrain: the domain's diffusion model on its DataModule -> DIR/pretrained.ckpt (+ heldout_3mer.json).
value:    SVDD-MC: roll out the frozen pre-trained model once (DIR/rollouts.pt, with rewards), then
          regress v(x_t, t) onto each trajectory's final reward -> DIR/value.ckpt.
oracle:   a reward model on labelled data (regression on one label column, or classification
          on integer classes such as the digits) -> DIR/oracle.ckpt, used with
          `decode.py reward=oracle reward.checkpoint=DIR/oracle.ckpt`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from callbacks.shard_writer import ShardWriter, read_shards
from datamodules.rollouts import RolloutDataModule, load_rollouts
from datamodules.seeds import SeedDataModule
from svdd_lightning.atomic import atomic_torch_save, atomic_write_text
from svdd_lightning.build import build_with_checkpoint, split_checkpoint
from svdd_lightning.checkpoints import load_state, reward_identity
from svdd_lightning.cli import (friendly_errors, is_launcher_process, make_trainer, quiet_lightning, save_config,
                                writable_output_dir)
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.errors import ConfigError
from svdd_lightning.loggers import build_logger
from svdd_lightning.modules.oracle import OracleModule
from svdd_lightning.modules.pretrain import DiffusionPretrainModule
from svdd_lightning.modules.rollouts import RolloutModule
from svdd_lightning.modules.value import ValueRegressionModule

STAGES = ("pretrain", "value", "oracle")


def resume_point(output_dir: Path, every_n_steps: int) -> tuple[ModelCheckpoint, str | None]:
    """A callback keeping ``output_dir/checkpoints/last.ckpt`` (weights, optimiser, step) up to date,
    and that file's path when an interrupted run of the same output_dir left one to resume from."""
    directory = output_dir / "checkpoints"
    last = directory / "last.ckpt"
    keeper = ModelCheckpoint(dirpath=directory, save_last=True, save_top_k=0,
                             every_n_train_steps=max(1, int(every_n_steps)))
    if last.is_file():
        print(f"resuming from {last} (an interrupted run in this output_dir); delete it to start over")
        return keeper, str(last)
    return keeper, None
ROLLOUT_SEED_OFFSET = 1_000_000  # rollouts never reuse the sample seeds of decode runs


def configured_vocabulary(cfg: DictConfig) -> list[str] | None:
    """The token list of the domain's vocabulary file (molecules), None for fixed alphabets."""
    if not cfg.domain.get("vocab"):
        return None
    from svdd_lightning.chem import SelfiesVocabulary

    return SelfiesVocabulary.load(cfg.domain.vocab).tokens


def run_pretrain(cfg: DictConfig, output_dir: Path) -> Path:
    data = instantiate(cfg.data)
    data.setup("fit")
    node, _ = split_checkpoint(cfg.diffusion)
    diffusion = instantiate(node)
    if cfg.pretrain.init_from:  # continue training a model (weights only; a fresh optimizer and schedule)
        load_state(diffusion, cfg.pretrain.init_from, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    module = DiffusionPretrainModule(diffusion=diffusion, domain=cfg.domain.name, input_key=cfg.domain.input_key,
                                     lr=cfg.pretrain.lr, warmup_steps=cfg.pretrain.warmup_steps,
                                     vocabulary=configured_vocabulary(cfg))
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, name=f"pretrain-{cfg.domain.name}")
    keeper, ckpt_path = resume_point(output_dir, cfg.checkpoint_every)
    trainer = make_trainer(cfg.trainer, max_steps=cfg.trainer.max_steps, logger=logger or False,
                           val_check_interval=min(cfg.pretrain.val_check_interval, cfg.trainer.max_steps),
                           check_val_every_n_epoch=None, callbacks=[keeper], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    path = output_dir / "pretrained.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        instantiate(cfg.naturalness).write_reference(data, output_dir)
    return path


def rollout_settings(cfg: DictConfig) -> dict:
    """What decides a rollout file: the pre-trained model, the reward and how rollouts are drawn."""
    vt = cfg.value_training
    return {"diffusion_checkpoint": cfg.diffusion.get("checkpoint"), "steps": cfg.steps, "seed": cfg.seed,
            "reward": reward_identity(OmegaConf.to_container(cfg.reward, resolve=True)),
            "num_rollouts": vt.num_rollouts, "rollout_batch_size": vt.rollout_batch_size, "save_every": vt.save_every}


def write_rollouts(cfg: DictConfig, output_dir: Path, diffusion, reward) -> Path:
    vt = cfg.value_training
    settings = rollout_settings(cfg)
    shard_dir = output_dir / ".rollout-shards"
    stored = shard_dir / "settings.json"
    if is_launcher_process() and shard_dir.exists() and (not stored.exists() or json.loads(stored.read_text()) != settings):
        print(f"rollouts: discarding the batches in {shard_dir}, drawn with other settings")
        shutil.rmtree(shard_dir)
    if is_launcher_process():
        shard_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(stored, json.dumps(settings))
    module = RolloutModule(diffusion=diffusion, reward=reward, seed=cfg.seed + ROLLOUT_SEED_OFFSET,
                           save_every=vt.save_every)
    writer = ShardWriter(directory=shard_dir)
    done = writer.done_starts()  # batches of rollouts an interrupted run already wrote (same seed, same indices)
    if done:
        print(f"rollouts: resuming, {len(done)} batch(es) already written in {writer.directory}")
    trainer = make_trainer(cfg.trainer, logger=False, callbacks=[writer], inference_mode=True)
    seeds = SeedDataModule(num_samples=vt.num_rollouts, batch_size=vt.rollout_batch_size, skip=done)
    if len(seeds.predict_dataloader()) > 0:
        trainer.predict(module, datamodule=seeds, return_predictions=False)
    trainer.strategy.barrier()
    path = output_dir / "rollouts.pt"
    if trainer.is_global_zero:
        merged = read_shards(writer.shard_paths())
        if not torch.isfinite(merged["rewards"]).all():
            raise ConfigError("the reward returned NaN or inf on some rollouts; fix the reward before training a value.")
        atomic_torch_save({"states": merged["states"], "steps": torch.tensor(module.steps),
                           "rewards": merged["rewards"], "samples": merged["samples"], "num_steps": diffusion.num_steps,
                           "seed": cfg.seed + ROLLOUT_SEED_OFFSET, "settings": settings}, path)
        shutil.rmtree(writer.directory, ignore_errors=True)  # rollouts.pt now holds every batch
        r = merged["rewards"]
        print(f"rollouts: {len(r)} trajectories x {len(module.steps)} states -> {path} "
              f"(reward median {r.median():.3f}, q90 {r.quantile(0.9):.3f})")
    trainer.strategy.barrier()
    return path


def check_rollout_settings(path: Path, settings: dict) -> None:
    """Refuse to reuse an output_dir's rollouts drawn with other settings (another reward, model...)."""
    stored = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("settings")
    if stored is None or stored == settings:  # files of earlier versions carry no settings
        return
    differ = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
    raise ConfigError(f"{path} holds rollouts drawn with other settings ({', '.join(differ)} differ); use another "
                      f"output_dir=DIR, delete that file, or pass value_training.rollouts={path} "
                      f"value_training.rescore=true to score its end points with this reward.")


def rescore_rollouts(source: Path, reward, output_dir: Path) -> Path:
    """The rollouts of ``source`` with their end points scored again by ``reward``: one pass of the
    pre-trained model serves the values of several rewards (MC targets are r(x_0) of the end point)."""
    data = load_rollouts(source)
    if data.get("samples") is None:
        raise ConfigError(f"rollout file {source} has no end points ('samples') to score again; write it with "
                          f"`python train.py stage=value` (this version stores them).")
    samples = data["samples"]
    with torch.no_grad():
        scores = torch.cat([reward(samples[i:i + 1024].long() if not samples.dtype.is_floating_point
                                   else samples[i:i + 1024]).float().cpu() for i in range(0, len(samples), 1024)])
    if not torch.isfinite(scores).all():
        raise ConfigError("the reward returned NaN or inf on some rollout end points; fix the reward first.")
    data["rewards"] = scores
    path = output_dir / "rollouts.pt"
    atomic_torch_save(data, path)
    print(f"rollouts: {len(scores)} end points of {source} scored again -> {path} "
          f"(reward median {scores.median():.3f}, q90 {scores.quantile(0.9):.3f})")
    return path


def run_value(cfg: DictConfig, output_dir: Path) -> Path:
    vt = cfg.value_training
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    reward = instantiate(cfg.reward)
    if vt.rollouts and vt.get("rescore", False):
        rollouts = rescore_rollouts(Path(vt.rollouts), reward, output_dir)
    elif vt.rollouts:
        rollouts = Path(vt.rollouts)
    elif (output_dir / "rollouts.pt").is_file():
        rollouts = output_dir / "rollouts.pt"
        check_rollout_settings(rollouts, rollout_settings(cfg))
        print(f"value: reusing the rollouts of an earlier run in this output_dir ({rollouts})")
    else:
        rollouts = write_rollouts(cfg, output_dir, diffusion, reward)
    node, _ = split_checkpoint(cfg.value)
    value = instantiate(node)
    reward_name = hydra.core.hydra_config.HydraConfig.get().runtime.choices.get("reward", "custom")
    module = ValueRegressionModule(value=value, domain=cfg.domain.name, reward_name=reward_name, lr=vt.lr,
                                   reward_config=reward_identity(OmegaConf.to_container(cfg.reward, resolve=True)),
                                   weight_decay=vt.weight_decay)
    renoise = None
    if vt.renoise:
        if not isinstance(diffusion, MaskedDiffusion):
            raise ConfigError("value_training.renoise=true is exact only for masked diffusion (tokens are revealed "
                              "independently of their content); use it with domain=dna|rna|molecule.")
        renoise = diffusion.add_noise
    data = RolloutDataModule(path=str(rollouts), batch_size=vt.batch_size, seed=cfg.seed, renoise=renoise)
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, name=f"value-{cfg.domain.name}-{reward_name}")
    # Rollout states of one trajectory are strongly correlated, so the value net overfits the training
    # trajectories after a while: keep the weights with the best rank correlation on held-out ones.
    best = ModelCheckpoint(dirpath=output_dir / ".value-checkpoints", monitor="val/spearman", mode="max",
                           save_top_k=1, save_weights_only=True)
    keeper, ckpt_path = resume_point(output_dir, cfg.checkpoint_every)
    trainer = make_trainer(cfg.trainer, max_steps=cfg.trainer.max_steps, logger=logger or False,
                           val_check_interval=min(vt.val_check_interval, cfg.trainer.max_steps),
                           check_val_every_n_epoch=None, callbacks=[best, keeper], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
        print(f"value: keeping the weights of the best validation Spearman ({float(best.best_model_score):.3f})")
    path = output_dir / "value.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return path


def oracle_network_node(cfg: DictConfig) -> dict:
    """The oracle's network config: oracle.network, else the domain's oracle_network, else its
    value_network (a regressor, run at t = 0)."""
    for node in (cfg.oracle.get("network"), cfg.get("oracle_network"), cfg.get("value_network")):
        if node is not None:
            container = OmegaConf.to_container(node, resolve=True)
            if "_target_" not in container:
                raise ConfigError("oracle.network needs a _target_ (the network class) and its arguments.")
            return container
    raise ConfigError(f"domain {cfg.domain.name} names no network for the oracle; set oracle.network._target_=CLASS.")


def run_oracle(cfg: DictConfig, output_dir: Path) -> Path:
    oc = cfg.oracle
    data = instantiate(cfg.data)
    data.setup("fit")
    key = cfg.domain.input_key
    labels = getattr(data, "train_labels", None)
    where = getattr(data, "data_path", None) or "the embedded data"
    if labels is None or labels.numel() == 0 or (not labels.dtype.is_floating_point and bool((labels < 0).all())):
        raise ConfigError(
            f"the oracle stage needs labelled data, but {where} has no labels. Point data.path at a table with a "
            f"label column and name it (data.label_columns=[COLUMN]), or for images at a .npz with 'labels' or a "
            f"folder of class sub-folders.")
    if oc.task not in ("auto", "regression", "classification"):
        raise ConfigError(f"oracle.task={oc.task} is unknown; use auto, regression or classification.")
    task = oc.task if oc.task != "auto" else ("regression" if labels.dtype.is_floating_point else "classification")
    node = oracle_network_node(cfg)
    label_columns = list(getattr(data, "label_names", None) or []) or None
    extra = {}
    if task == "classification":
        flat = labels.reshape(-1)
        if labels.dtype.is_floating_point and not bool((flat == flat.round()).all() and (flat >= 0).all()):
            raise ConfigError("oracle.task=classification needs integer class labels 0, 1, ...; use oracle.task=regression.")
        num_classes = int(getattr(data, "num_classes", None) or int(flat.max()) + 1)
        if "num_classes" in node:
            node["num_classes"] = num_classes
        extra = {"num_classes": num_classes, "class_names": getattr(data, "class_names", None)}
    else:
        if labels.dim() == 2 and labels.shape[1] != 1:
            raise ConfigError(
                f"the oracle stage regresses one label column, but data.label_columns={label_columns}; train one "
                f"oracle per column, e.g. data.label_columns=[{label_columns[0]}].")
        values = labels.float().reshape(-1)
        extra = {"label_mean": float(values.mean()), "label_std": float(values.std()) if values.numel() > 1 else 1.0}
        extra["label_std"] = extra["label_std"] if extra["label_std"] > 0 else 1.0
    network = instantiate(node)
    batch = next(iter(data.train_dataloader()))
    with torch.no_grad():
        out = network(batch[key][:2])
    fits = [(extra["num_classes"],)] if task == "classification" else [(), (1,)]
    if tuple(out.shape[1:]) not in fits:
        raise ConfigError(
            f"the oracle network {node['_target_']} returns shape {tuple(out.shape[1:])} per input, but a {task} "
            f"oracle needs {'one logit per class ' + str(fits[0]) if task == 'classification' else 'one number'}; "
            f"set oracle.network to a fitting network.")
    module = OracleModule(network=network, network_config=node, domain=cfg.domain.name, task=task, input_key=key,
                          input_shape=list(batch[key].shape[1:]), label_columns=label_columns, lr=oc.lr,
                          weight_decay=oc.weight_decay, **extra)
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, name=f"oracle-{cfg.domain.name}")
    keeper, ckpt_path = resume_point(output_dir, cfg.checkpoint_every)
    trainer = make_trainer(cfg.trainer, max_steps=cfg.trainer.max_steps, logger=logger or False,
                           val_check_interval=min(oc.val_check_interval, cfg.trainer.max_steps),
                           check_val_every_n_epoch=None, callbacks=[keeper], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    metrics = trainer.validate(module, datamodule=data, verbose=False)
    module.final_metrics = {k: round(float(v), 6) for k, v in (metrics[0] if metrics else {}).items()}
    path = output_dir / "oracle.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in module.final_metrics.items())
        print(f"oracle ({task}, {cfg.domain.name}): validation {shown or '(no validation data)'}")
    return path


RUNNERS = {"pretrain": run_pretrain, "value": run_value, "oracle": run_oracle}


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    quiet_lightning()
    if cfg.stage not in STAGES:
        raise ConfigError(f"stage={cfg.stage} is unknown; use one of {', '.join(STAGES)}.")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.output_dir)
    writable_output_dir(output_dir)
    save_config(cfg, output_dir / "config.yaml")
    path = RUNNERS[cfg.stage](cfg, output_dir)
    print(f"{cfg.stage}: wrote {path}")


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    main()
