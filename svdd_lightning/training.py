"""Fitting a training stage's LightningModule the way every stage of ``train.py`` does: the run's logger,
validation every few steps, and resumption of an interrupted run from its last checkpoint."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from svdd_lightning.build import build_logger, build_trainer
from svdd_lightning.stopping import StopAfterBatch


def fit(cfg: DictConfig, module: L.LightningModule, data, output_dir: Path, *, name: str, val_every: int,
        callbacks: tuple = ()) -> L.Trainer:
    """trainer.fit with the run's logger, resuming from output_dir/checkpoints/last.ckpt when an interrupted
    run of the same output_dir left one (kept up to date every checkpoint_every steps)."""
    last = output_dir / "checkpoints" / "last.ckpt"
    keeper = ModelCheckpoint(dirpath=last.parent, save_last=True, save_top_k=0,
                             every_n_train_steps=max(1, int(cfg.checkpoint_every)))
    if last.is_file():
        print(f"resuming from {last} (an interrupted run in this output_dir); delete it to start over")
    trainer = build_trainer(cfg.trainer, logger=build_logger(cfg, output_dir=output_dir, name=name) or False,
                            val_check_interval=min(val_every, cfg.trainer.max_steps), check_val_every_n_epoch=None,
                            callbacks=[*callbacks, keeper, StopAfterBatch(last=last)], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    return trainer
