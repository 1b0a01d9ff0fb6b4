"""Experiment loggers: W&B (offline unless the user configured it), CSV, or none."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from svdd_lightning.errors import ConfigError


def wandb_configured() -> bool:
    """True when the user chose a W&B mode or logged in (API key in the env or ~/.netrc)."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc()
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in rc.hosts)


def build_logger(kind: str, *, output_dir: Path, project: str = "svdd-lightning", name: str | None = None,
                 config: dict | None = None):
    if kind == "none":
        return None
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(output_dir), name="csv")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        offline = not wandb_configured()
        if offline:
            os.environ["WANDB_MODE"] = "offline"
        output_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        return WandbLogger(project=project, name=name, save_dir=str(output_dir), offline=offline, config=config)
    raise ConfigError(f"logger '{kind}' is unknown; use logger=wandb, logger=csv or logger=none.")


def wandb_sync_hint(output_dir: Path) -> str:
    runs = sorted((output_dir / "wandb").glob("offline-run-*"))
    target = runs[-1] if runs else output_dir / "wandb" / "offline-run-*"
    return f"wandb sync {target}"
