"""A pre-trained checkpoint that knows its model, like diffusers' ``save_pretrained``.

``train.py stage=pretrain`` records the diffusion's config node (the diffusion's settings and its network's
constructor arguments, as resolved ``_target_`` dicts) in the checkpoint's metadata under ``model``, so that
``svdd_lightning.load_diffusion("checkpoints/dna/pretrained.ckpt")`` rebuilds the model without retyped sizes.
A file only ever names what is built: every ``_target_`` of a description must be one of the project's
diffusions or networks, or a diffusers model or scheduler class (:data:`BUILDABLE`), never an arbitrary path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from svdd_lightning.errors import CheckpointError

# What a checkpoint's description may ask to be built: module prefixes, and single diffusers classes.
BUILDABLE_PREFIXES = ("svdd_lightning.diffusion.", "svdd_lightning.networks.")
BUILDABLE_CLASSES = ("diffusers.UNet2DModel", "diffusers.DDPMScheduler", "diffusers.DDIMScheduler",
                     "diffusers.FlowMatchEulerDiscreteScheduler")
# Keys of the diffusion node that are not the model: where its weights are, and how it is run.
NOT_THE_MODEL = ("checkpoint", "compile")
# The number of denoising steps a diffusion takes at decoding, by its builder's argument name: a loaded model
# may decode with fewer steps than it was trained with (num_steps=).
STEP_ARGUMENTS = ("num_steps", "num_inference_steps")


def describe_model(node: DictConfig | dict) -> dict[str, Any]:
    """The description a checkpoint records: the resolved diffusion node without its checkpoint path."""
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    return {k: v for k, v in container.items() if k not in NOT_THE_MODEL}


def targets_of(description: Any) -> list[str]:
    """Every ``_target_`` in a (nested) description."""
    if isinstance(description, dict):
        own = [str(description["_target_"])] if "_target_" in description else []
        return own + [t for v in description.values() for t in targets_of(v)]
    if isinstance(description, list):
        return [t for v in description for t in targets_of(v)]
    return []


def read_model_description(path: str | Path) -> dict[str, Any]:
    """The model description of a pre-trained checkpoint, checked to name only buildable classes."""
    from svdd_lightning.checkpoints import read_checkpoint, resolve_path

    meta = read_checkpoint(path).get("svdd", {})
    description = meta.get("model")
    if meta.get("kind") not in (None, "diffusion"):
        raise CheckpointError(f"checkpoint {resolve_path(path)} holds a {meta.get('kind')} model, not a pre-trained "
                              f"diffusion; pass a checkpoint of `python train.py stage=pretrain`.")
    if not isinstance(description, dict) or "_target_" not in description:
        raise CheckpointError(
            f"checkpoint {resolve_path(path)} does not record its model (written before checkpoints described "
            f"their model, or not by `python train.py stage=pretrain`). Build the diffusion yourself and pass it: "
            f"svdd_lightning.load_diffusion(diffusion, path), or retrain it with train.py stage=pretrain.")
    foreign = [t for t in targets_of(description)
               if not t.startswith(BUILDABLE_PREFIXES) and t not in BUILDABLE_CLASSES]
    if foreign:
        raise CheckpointError(
            f"checkpoint {resolve_path(path)} asks for {', '.join(foreign)} to be built, which is not one of this "
            f"project's diffusions or networks (nor a diffusers UNet2DModel or scheduler); refusing to build what a "
            f"file names. Build the diffusion yourself and pass it: svdd_lightning.load_diffusion(diffusion, path).")
    return description


def build_described_model(path: str | Path, *, num_steps: int | None = None) -> Any:
    """The diffusion a checkpoint describes, untrained (the caller loads the weights); ``num_steps`` replaces
    the number of denoising steps it was trained with."""
    from hydra.utils import instantiate

    description = read_model_description(path)
    if num_steps is not None:
        steps = [k for k in STEP_ARGUMENTS if k in description]
        if not steps:
            raise CheckpointError(f"checkpoint {path}: its model takes no number of steps "
                                  f"({', '.join(STEP_ARGUMENTS)}), so num_steps={num_steps} cannot be set.")
        description = {**description, steps[0]: int(num_steps)}
    return instantiate(description)
