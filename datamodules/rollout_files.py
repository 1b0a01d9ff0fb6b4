"""Writing the rollout file of ``train.py stage=value`` (SVDD-MC): roll the frozen pre-trained model out
once through ``trainer.predict`` (one shard per batch, so an interrupted run resumes), score the end
points with the reward and save states, steps, rewards and end points in one ``rollouts.pt``, which
:class:`datamodules.rollouts.RolloutDataModule` reads. One rollout pass can serve several rewards
(:func:`rescore_rollouts`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig

from callbacks.shard_writer import ShardWriter, read_shards
from datamodules.rollouts import load_rollouts
from datamodules.seeds import SeedDataModule
from svdd_lightning.atomic import atomic_torch_save, atomic_write_text
from svdd_lightning.build import build_trainer
from svdd_lightning.checkpoints import reward_identity
from svdd_lightning.cli import is_launcher_process
from svdd_lightning.errors import ConfigError
from svdd_lightning.modules.rollouts import RolloutModule
from svdd_lightning.reward_choice import reward_config

ROLLOUT_SEED_OFFSET = 1_000_000  # rollouts never reuse the sample seeds of decode runs


def rollout_settings(cfg: DictConfig) -> dict:
    """What decides a rollout file: the pre-trained model, the reward and how rollouts are drawn."""
    vt = cfg.value_training
    model_path = (cfg.get("model") or {}).get("path")  # a user's diffusers folder replaces the checkpoint
    return {"diffusion_checkpoint": model_path or cfg.diffusion.get("checkpoint"), "steps": cfg.steps, "seed": cfg.seed,
            "reward": reward_identity(reward_config(cfg)),
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
    trainer = build_trainer(cfg.trainer, logger=False, callbacks=[writer], inference_mode=True)
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
    stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("settings")
    if stored == settings:
        return
    if stored is None:  # no record of how they were drawn: reused, they could belong to another reward or model
        raise ConfigError(f"{path} holds rollouts with no record of the settings they were drawn with (an earlier "
                          f"version's file); delete it to draw them again, or pass value_training.rollouts={path} "
                          f"to use them as they are.")
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
