"""Loading shipped or user checkpoints into the networks built from configs, with errors that
say what is wrong (missing file, other domain, other architecture) and what to do."""

from __future__ import annotations

from pathlib import Path
import pickle
from typing import Any

import torch
from torch import nn

from svdd_lightning.errors import CheckpointError
from svdd_lightning.paths import resolve_path  # noqa: F401  (re-exported)


def shipped_value_path(domain: str, reward: str) -> str:
    """Where the shipped SVDD-MC value of a domain's reward is (``value.checkpoint=null`` picks it; for several rewards
    at once the reward is named ``qed+sa``): the one place these files are named. train.py stage=value writes into
    its output_dir; a value copied here ships."""
    return f"checkpoints/{domain}/value_{reward}.ckpt"


def load_tensors_only(path: str | Path) -> Any:
    """``torch.load`` that never runs code from the file (``weights_only=True``): tensors, numbers,
    strings and plain containers only, so a checkpoint, rollout file or shard from elsewhere cannot
    execute anything. A file holding other objects raises ``pickle.UnpicklingError``."""
    return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist. Pass an existing file (diffusion.checkpoint=PATH, "
            f"value.checkpoint=PATH or reward.checkpoint=PATH), or train one with `python train.py stage=...` "
            f"(see docs/tutorials/training.md)."
        )
    try:
        return load_tensors_only(path)
    except pickle.UnpicklingError as exc:
        # torch's message spans many lines; the one naming what the file asked to import is the useful one.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        what = next((line for line in lines if "GLOBAL" in line or "global" in line), lines[0] if lines else "")
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers, which loading would have "
            f"to run code for ({what}); refusing to load it. It was not written by this project's train.py: use a "
            f"checkpoint from `python train.py stage=...`, or re-save its state_dict with torch.save."
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(exc).__name__}: {exc}). The file is corrupt or not a "
            f"PyTorch/Lightning checkpoint; re-download or retrain it."
        ) from exc


def load_state(
    module: nn.Module, path: str | Path, *, kind: str, domain: str | None, prefix: str
) -> dict[str, Any]:
    """Load the weights under ``prefix`` of a Lightning checkpoint into ``module``.

    Checks the metadata our modules write (kind: diffusion/value/oracle, domain) before the
    tensors, so a DNA checkpoint handed to the molecule domain says so instead of failing on
    shapes. Returns the metadata.
    """
    ckpt = read_checkpoint(path)
    meta = ckpt.get("svdd", {})
    if meta.get("kind") not in (None, kind):
        raise CheckpointError(
            f"checkpoint {path} holds a {meta.get('kind')} model, but a {kind} model was expected here. "
            f"Use a checkpoint written by `python train.py stage={'pretrain' if kind == 'diffusion' else kind}`."
        )
    if domain is not None and meta.get("domain") not in (None, domain):
        raise CheckpointError(
            f"checkpoint {path} was trained for domain '{meta.get('domain')}', not '{domain}'. Pass a "
            f"checkpoint of domain '{domain}' or set domain={meta.get('domain')}."
        )
    state = ckpt.get("state_dict", ckpt)
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise CheckpointError(
            f"checkpoint {path} has no weights under '{prefix}'; it was not written by this stage's "
            f"training module. Use a checkpoint from `python train.py` for this stage."
        )
    try:
        module.load_state_dict(sub)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(
            f"checkpoint {path} does not fit the configured network ({' '.join(first)}). It was trained "
            f"with another architecture; pass the matching network settings or retrain."
        ) from exc
    return meta


# Reward options that do not decide what a reward returns: how fast it runs (workers, cache), and the
# SELFIES vocabulary the molecule rewards took before they became rewards over SMILES (value checkpoints
# trained then record it; the vocabulary is now the domain's, checked against the pre-trained checkpoint).
RUNTIME_REWARD_OPTIONS = ("workers", "cache", "vocab")


def reward_identity(reward_config: dict) -> dict:
    """The options of a reward's config that decide its values."""
    return {k: v for k, v in reward_config.items() if k not in RUNTIME_REWARD_OPTIONS}


def check_value_reward(path: str | Path, reward_config: dict) -> None:
    """Refuse a value checkpoint trained for the same reward under other settings (e.g. another
    target class): it estimates the expected value of that other reward."""
    recorded = read_checkpoint(path).get("svdd", {}).get("reward_config")
    reward_config = reward_identity(reward_config)
    recorded = None if recorded is None else reward_identity(recorded)
    if recorded is None or recorded == reward_config:
        return
    differ = sorted(k for k in set(recorded) | set(reward_config) if recorded.get(k) != reward_config.get(k))
    shown = ", ".join(f"{k}: {recorded.get(k)!r} there, {reward_config.get(k)!r} here" for k in differ)
    raise CheckpointError(
        f"value checkpoint {resolve_path(path)} was trained for the reward with other settings ({shown}). Train a "
        f"value for these settings (`python train.py stage=value ...`) and pass value.checkpoint=PATH, or use "
        f"decoder=svdd_pm, which needs no trained value.")


def load_diffusion(model: nn.Module | str | Path, path: str | Path | None = None, *, domain: Any = None,
                   num_steps: int | None = None) -> nn.Module:
    """A pre-trained diffusion (``train.py stage=pretrain``), frozen, for decoding from Python.

    ``load_diffusion("checkpoints/dna/pretrained.ckpt")``: the checkpoint describes its model (network sizes and
    diffusion settings, svdd_lightning/model_description.py), which is rebuilt and loaded; ``num_steps`` decodes
    with fewer steps than it was trained with. ``load_diffusion(diffusion, path)``: loads into a diffusion built
    by hand, whose architecture must match. With ``domain`` (a Domain), the checkpoint must agree with it (e.g.
    the molecules' SELFIES vocabulary)."""
    if isinstance(model, nn.Module):
        if path is None:
            raise TypeError("load_diffusion(diffusion, path): give the checkpoint's path after the diffusion")
        if num_steps is not None:
            raise TypeError("load_diffusion(diffusion, path) loads into the diffusion as built; set its steps there")
        diffusion = model
    else:
        if path is not None:
            raise TypeError("load_diffusion(path) takes the checkpoint's path alone, or (diffusion, path)")
        from svdd_lightning.model_description import build_described_model

        path = model
        diffusion = build_described_model(path, num_steps=num_steps)
    meta = load_state(diffusion, path, kind="diffusion", domain=None, prefix="diffusion.")
    if domain is not None:
        domain.check_checkpoint(path, meta)
    return diffusion.eval().requires_grad_(False)
