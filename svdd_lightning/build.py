"""Building objects from Hydra config nodes. ``checkpoint`` keys are not constructor arguments:
they are popped here and the weights loaded after the object is built, with checked metadata."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from svdd_lightning.checkpoints import load_state


def split_checkpoint(node: DictConfig | dict) -> tuple[dict, str | None]:
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    checkpoint = container.pop("checkpoint", None)
    return container, checkpoint


def build_with_checkpoint(node: DictConfig | dict, *, kind: str, domain: str | None, prefix: str,
                          **kwargs: Any) -> Any:
    """Instantiate ``node`` (minus its ``checkpoint``) and load the checkpoint's weights under
    ``prefix`` (e.g. 'diffusion.' or 'value.') into it."""
    container, checkpoint = split_checkpoint(node)
    obj = instantiate(container, **kwargs)
    if checkpoint:
        load_state(obj, checkpoint, kind=kind, domain=domain, prefix=prefix)
    return obj
