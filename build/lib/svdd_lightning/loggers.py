"""The experiment loggers the ``logger`` config group instantiates (``_target_``): W&B (offline unless the
user configured it) and CSV. ``logger=none`` sets the node to null (no logger)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any


def wandb_configured() -> bool:
    """True when the user chose a W&B mode or logged in (API key in the env or ~/.netrc)."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc()
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any("wandb" in host for host in rc.hosts)


def wandb_logger(*, save_dir: str, name: str | None = None, project: str = "svdd-lightning",
                 run_config: dict[str, Any] | None = None) -> Any:
    """Lightning's WandbLogger, offline (runs under save_dir/wandb, ``wandb sync`` uploads them) unless the
    user chose a mode or logged in."""
    from lightning.pytorch.loggers import WandbLogger

    offline = not wandb_configured()
    if offline:
        os.environ["WANDB_MODE"] = "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(project=project, name=name, save_dir=save_dir, offline=offline, config=run_config)


def csv_logger(*, save_dir: str, name: str | None = None, run_config: dict[str, Any] | None = None) -> Any:
    """Lightning's CSVLogger under save_dir/csv (the run's settings go to its hparams.yaml)."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir=save_dir, name="csv")
    if run_config:
        logger.log_hyperparams(run_config)
    return logger


def is_offline_wandb(logger: Any) -> bool:
    return type(logger).__name__ == "WandbLogger" and os.environ.get("WANDB_MODE") == "offline"


def wandb_sync_hint(output_dir: Path) -> str:
    runs = sorted((output_dir / "wandb").glob("offline-run-*"))
    target = runs[-1] if runs else output_dir / "wandb" / "offline-run-*"
    return f"wandb sync {target}"
