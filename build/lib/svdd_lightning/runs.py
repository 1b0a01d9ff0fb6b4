"""A decode run's output directory: checked writable, never overwritten by accident, resumable.

A finished run (summary.json / samples.csv) is kept unless ``overwrite=true``; an interrupted run with
the same settings (``run.json`` in ``.shards/``) is resumed from the batches it wrote; one with other
settings is refused rather than mixed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from svdd_lightning.atomic import atomic_write_text
from svdd_lightning.cli import is_launcher_process, save_config, writable_output_dir
from svdd_lightning.errors import ConfigError
from svdd_lightning.predictions import done_starts

RESULT_FILES = ("summary.json", "samples.csv")
FINGERPRINT = "run.json"
# What does not decide the samples: where outputs go, logging and the devices.
NOT_FINGERPRINTED = {"output_dir", "logger", "trainer", "hydra", "overwrite", "compute_naturalness", "reference_out"}


def run_fingerprint(cfg: DictConfig) -> dict:
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in cfg if key not in NOT_FINGERPRINTED}


def prepare_output_dir(cfg: DictConfig, output_dir: Path) -> set[int]:
    """Create ``output_dir``, refuse to overwrite a finished run unless ``overwrite=true``, and return the
    batches an interrupted run with the same settings already wrote (resumed, not decoded again)."""
    writable_output_dir(output_dir)
    shard_dir = output_dir / ".shards"
    fingerprint = run_fingerprint(cfg)
    finished = [name for name in RESULT_FILES if (output_dir / name).exists()]
    if is_launcher_process():
        if finished and not cfg.overwrite:
            raise ConfigError(f"output_dir={output_dir} already holds a finished run ({', '.join(finished)}); choose "
                              f"another output_dir=DIR, or pass overwrite=true to replace it.")
        stored = shard_dir / FINGERPRINT
        if shard_dir.exists() and (cfg.overwrite or not stored.exists()
                                   or json.loads(stored.read_text()) != fingerprint):
            if not cfg.overwrite and any(shard_dir.glob("batch-*.pt")):
                raise ConfigError(f"output_dir={output_dir} holds partial results of an interrupted run with different "
                                  f"settings ({shard_dir}); rerun with the same settings to resume it, choose another "
                                  f"output_dir=DIR, or pass overwrite=true to start over.")
            shutil.rmtree(shard_dir)
        shard_dir.mkdir(exist_ok=True)
        atomic_write_text(stored, json.dumps(fingerprint, indent=2) + "\n")
        save_config(cfg, output_dir / "config.yaml")
    return done_starts(shard_dir)
