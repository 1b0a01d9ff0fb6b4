"""What `python train.py` runs: the training stages (pretrain, value, oracle) on a composed config.

    python train.py stage=pretrain domain=dna [trainer.max_steps=N] [output_dir=DIR]
    python train.py stage=value domain=dna reward=hepg2_motif [value_training.num_rollouts=N] [output_dir=DIR]
    python train.py stage=oracle domain=dna data.path=TABLE.csv data.label_columns=[HepG2] [output_dir=DIR]
    python train.py stage=oracle domain=image [trainer.max_steps=N] [output_dir=DIR]
    python train.py stage=distill domain=dna reward=hepg2_motif [distill.rounds=N] [output_dir=DIR]

pretrain: the domain's diffusion model on its DataModule -> DIR/pretrained.ckpt (+ the domain's
          naturalness reference, e.g. heldout_3mer.json).
value:    SVDD-MC: roll out the frozen pre-trained model once (DIR/rollouts.pt, with rewards), then
          regress v(x_t, t) onto each trajectory's final reward -> DIR/value.ckpt.
oracle:   a reward model on labelled data (regression on one label column, or classification
          on integer classes such as the digits) -> DIR/oracle.ckpt, used with
          `decode.py reward=oracle reward.checkpoint=DIR/oracle.ckpt`.
distill:  SVDD's soft-optimal policy distilled into the pre-trained model by rounds of roll-in, teacher and
          forward-KL update (svdd_lightning/modules/distill.py) -> DIR/distilled.ckpt, which every decoder loads
          with `decode.py diffusion.checkpoint=DIR/distilled.ckpt`, and DIR/distill.json (per round: the
          plain samples' rewards, their log-likelihood under the original model, the calls spent).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from datamodules.rollout_files import check_rollout_settings, rescore_rollouts, rollout_settings, write_rollouts
from datamodules.rollouts import RolloutDataModule
from svdd_lightning.build import build_diffusion, build_domain, build_reward, split_checkpoint
from svdd_lightning.checkpoints import load_state, load_tensors_only, reward_identity
from svdd_lightning.diffusion.gaussian import save_pipeline
from svdd_lightning.cli import (friendly_errors, quiet_lightning, save_config, start_process,
                                writable_output_dir)
from svdd_lightning.errors import ConfigError
from svdd_lightning.modules.oracle import OracleModule, check_oracle_network, oracle_task
from svdd_lightning.model_description import describe_model
from svdd_lightning.modules.pretrain import DiffusionPretrainModule
from svdd_lightning.modules.value import ValueRegressionModule
from svdd_lightning.options import check_config
from svdd_lightning.paths import CONFIG_DIR
from svdd_lightning.reward_choice import is_several, reward_config, reward_label
from svdd_lightning.rewards.latent import reward_of_states
from svdd_lightning.training import fit

STAGES = ("pretrain", "value", "oracle", "distill")


def run_pretrain(cfg: DictConfig, output_dir: Path) -> Path:
    domain = build_domain(cfg)
    data = instantiate(cfg.data)
    data.setup("fit")
    diffusion = instantiate(split_checkpoint(cfg.diffusion)[0])
    if cfg.pretrain.init_from:  # continue training a model (weights only; a fresh optimizer and schedule)
        load_state(diffusion, cfg.pretrain.init_from, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    module = DiffusionPretrainModule(diffusion=diffusion, domain=cfg.domain.name, input_key=cfg.domain.input_key,
                                     lr=cfg.pretrain.lr, warmup_steps=cfg.pretrain.warmup_steps,
                                     domain_metadata=domain.checkpoint_metadata(),
                                     model_description=describe_model(cfg.diffusion))
    trainer = fit(cfg, module, data, output_dir, name=f"pretrain-{cfg.domain.name}",
                  val_every=cfg.pretrain.val_check_interval)
    path = output_dir / "pretrained.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        domain.write_reference(data, output_dir)
        if save_pipeline(module.diffusion, output_dir / "pipeline"):  # diffusers models: a DDIMPipeline folder too
            print(f"pretrain: wrote {output_dir / 'pipeline'} (diffusers DDIMPipeline.from_pretrained loads it)")
    return path


def soft_alpha(cfg: DictConfig, reward_name: str) -> float | None:
    """value_training.soft_alpha, or when it is null: the domain's reward scale of this reward (about one standard
    deviation of pre-trained rewards), or 1 for several rewards summed (rewards/multi.py: already in units of
    each component's scale). None for target=mean; a clear error for a soft target without any of these."""
    alpha = cfg.value_training.get("soft_alpha")
    if alpha is None:
        alpha = (cfg.domain.get("reward_scale") or {}).get(reward_name)
    if alpha is None and is_several(cfg.reward) and cfg.reward.get("combine", "sum") == "sum":
        alpha = 1.0
    if alpha is None and cfg.value_training.get("target", "mean") == "soft":
        raise ConfigError(f"value_training.target=soft needs a temperature, and reward {reward_name} has no "
                          f"reward_scale in domain '{cfg.domain.name}': pass value_training.soft_alpha=A (reward "
                          f"units, about one standard deviation of pre-trained rewards), or value_training.target=mean.")
    return None if alpha is None else float(alpha)


def overridden_max_steps() -> int | None:
    """trainer.max_steps as given on the command line (or to compose), None when not given."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.lstrip("+~").partition("=")
        if key == "trainer.max_steps":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def run_value(cfg: DictConfig, output_dir: Path) -> Path:
    vt = cfg.value_training
    reward_name = reward_label(cfg.reward)
    alpha = soft_alpha(cfg, reward_name)  # checked before any rollout is made
    domain = build_domain(cfg)
    diffusion = build_diffusion(cfg, domain)
    # A latent model's rollouts end in latents: the reward scores them decoded, as decoders call it.
    reward = reward_of_states(build_reward(cfg, domain), diffusion)
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
    getattr(reward, "close", lambda: None)()  # the reward's worker processes are not needed for regression
    module = ValueRegressionModule(value=instantiate(split_checkpoint(cfg.value)[0]), domain=cfg.domain.name,
                                   reward_name=reward_name, lr=vt.lr, weight_decay=vt.weight_decay,
                                   reward_config=reward_identity(reward_config(cfg)),
                                   target=vt.get("target", "mean"), soft_alpha=alpha)
    if vt.renoise and not diffusion.renoise_is_exact:
        raise ConfigError("value_training.renoise=true is exact only for masked diffusion (tokens are revealed "
                          "independently of their content); use it with a masked (token) domain.")
    data = RolloutDataModule(path=str(rollouts), batch_size=vt.batch_size, seed=cfg.seed,
                             renoise=diffusion.add_noise if vt.renoise else None)
    # Rollout states of one trajectory are strongly correlated, so the value net overfits the training
    # trajectories after a while: keep the weights with the best rank correlation on held-out ones.
    best = ModelCheckpoint(dirpath=output_dir / ".value-checkpoints", monitor="val/spearman", mode="max",
                           save_top_k=1, save_weights_only=True)
    trainer = fit(cfg, module, data, output_dir, name=f"value-{cfg.domain.name}-{reward_name}",
                  val_every=vt.val_check_interval, callbacks=(best,))
    if best.best_model_path:
        module.load_state_dict(load_tensors_only(best.best_model_path)["state_dict"])
        print(f"value: keeping the weights of the best validation Spearman ({float(best.best_model_score):.3f})")
    path = output_dir / "value.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return path


def run_oracle(cfg: DictConfig, output_dir: Path) -> Path:
    data = instantiate(cfg.data)
    data.setup("fit")
    task, facts = oracle_task(data, cfg.oracle.task)
    # The network: oracle.network, else the domain's oracle_network, else its value_network (run at t = 0).
    node = next((n for n in (cfg.oracle.get("network"), cfg.get("oracle_network"), cfg.get("value_network"))
                 if n is not None), None)
    if node is None or "_target_" not in node:
        raise ConfigError(f"domain {cfg.domain.name} names no network for the oracle; set oracle.network._target_=CLASS.")
    override = {"num_classes": facts["num_classes"]} if task == "classification" and "num_classes" in node else {}
    network = instantiate(node, **override)
    key = cfg.domain.input_key
    batch = next(iter(data.train_dataloader()))
    check_oracle_network(network, batch[key][:2], task=task, num_classes=facts.get("num_classes"))
    module = OracleModule(network=network, domain=cfg.domain.name, task=task, input_key=key,
                          input_shape=list(batch[key].shape[1:]), lr=cfg.oracle.lr, weight_decay=cfg.oracle.weight_decay,
                          label_columns=list(getattr(data, "label_names", None) or []) or None, **facts)
    trainer = fit(cfg, module, data, output_dir, name=f"oracle-{cfg.domain.name}", val_every=cfg.oracle.val_check_interval)
    metrics = trainer.validate(module, datamodule=data, verbose=False)
    module.final_metrics = {k: round(float(v), 6) for k, v in (metrics[0] if metrics else {}).items()}
    path = output_dir / "oracle.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in module.final_metrics.items())
        print(f"oracle ({task}, {cfg.domain.name}): validation {shown or '(no validation data)'}")
    return path


def run_distill(cfg: DictConfig, output_dir: Path) -> Path:
    import json
    import time

    from omegaconf import open_dict

    from svdd_lightning.atomic import atomic_write_text
    from svdd_lightning.checkpoints import read_checkpoint
    from svdd_lightning.modules.distill import DistillModule, RoundSteps, default_alpha

    dc = cfg.distill
    asked = overridden_max_steps()  # before anything is built: a length the rounds would silently replace
    if asked is not None and asked != int(dc.rounds) * int(dc.steps_per_round):
        raise ConfigError(f"trainer.max_steps={asked}: a distillation's length is distill.rounds x "
                          f"distill.steps_per_round ({dc.rounds} x {dc.steps_per_round} = "
                          f"{int(dc.rounds) * int(dc.steps_per_round)}); drop trainer.max_steps and set "
                          f"distill.rounds= or distill.steps_per_round= instead.")
    reward_name = reward_label(cfg.reward)
    alpha = dc.alpha if dc.alpha is not None else default_alpha((cfg.domain.get("reward_scale") or {}).get(reward_name))
    domain = build_domain(cfg)
    diffusion = build_diffusion(cfg, domain)
    reward = build_reward(cfg, domain)
    checkpoint = cfg.diffusion.get("checkpoint")
    metadata = read_checkpoint(checkpoint).get("svdd", {}) if checkpoint else {}
    module = DistillModule(diffusion=diffusion, reward=reward, domain=cfg.domain.name, seed=int(cfg.seed),
                           rounds=int(dc.rounds), steps_per_round=int(dc.steps_per_round),
                           samples_per_round=int(dc.samples_per_round),
                           states_per_trajectory=int(dc.states_per_trajectory), num_candidates=int(dc.num_candidates),
                           alpha=float(alpha), batch_size=int(dc.batch_size), replay_size=int(dc.replay_size),
                           kl_weight=float(dc.kl_weight), lr=float(dc.lr), pretrained_metadata=metadata)
    steps = int(dc.rounds) * int(dc.steps_per_round)
    with open_dict(cfg):
        cfg.trainer.max_steps = steps  # the rounds set the length of a distillation
    data = L.LightningDataModule.from_datasets(train_dataset=RoundSteps(steps), batch_size=1, num_workers=0)
    started = time.perf_counter()
    trainer = fit(cfg, module, data, output_dir, name=f"distill-{cfg.domain.name}-{reward_name}", val_every=steps)
    path = output_dir / "distilled.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    if trainer.is_global_zero:
        record = {"reward": reward_name, "alpha": float(alpha), "options": dict(dc), "pretrained": checkpoint,
                  "rounds": module.history, "calls": module.calls, "calls_total": int(sum(module.calls.values())),
                  # this run's seconds (a resumed run: since it resumed)
                  "wall_seconds": round(time.perf_counter() - started, 1)}
        atomic_write_text(output_dir / "distill.json", json.dumps(record, indent=2, default=float))
        print(f"distill: {len(module.history)} rounds, {record['calls_total']} calls in all ({module.calls}); "
              f"per round in {output_dir / 'distill.json'}")
    return path


RUNNERS = {"pretrain": run_pretrain, "value": run_value, "oracle": run_oracle, "distill": run_distill}


@friendly_errors
def train_command(cfg: DictConfig) -> None:
    """What `python train.py` runs on the config Hydra composed: the stage cfg.stage, into cfg.output_dir."""
    quiet_lightning()
    if cfg.stage not in STAGES:
        raise ConfigError(f"stage={cfg.stage} is unknown; use one of {', '.join(STAGES)}.")
    check_config(cfg, entry="train")  # every option, before anything is built or written
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.output_dir)
    writable_output_dir(output_dir)
    save_config(cfg, output_dir / "config.yaml")
    print(f"{cfg.stage}: wrote {RUNNERS[cfg.stage](cfg, output_dir)}")


# The command line: `python train.py` in the checkout and the console script `svdd-train` of an installed package.
main = hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")(train_command)


def cli() -> None:
    start_process()
    main()
