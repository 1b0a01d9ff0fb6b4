"""Learned reward oracles trained by ``python train.py stage=oracle`` on labelled data.

The oracle checkpoint is self-describing: its metadata (``ckpt["svdd"]``) holds the network's
class (one of the project's known networks) and constructor arguments (``network``), the task (``regression`` or
``classification``), the label column(s) or class names, and for regression the label mean and
standard deviation the network was trained to predict in standardised units. So
``reward=oracle reward.checkpoint=PATH`` needs nothing else to rebuild the model:

- regression (e.g. a HepG2 activity column of an MPRA table): the reward is the predicted
  label, in the label's own units;
- classification (e.g. the digit classifier): the reward is log p(target_class | x), in nats
  (<= 0), and ``reward.target_class`` is required.

The network is frozen but the reward is differentiable in its input (soft one-hot sequences or
image pixels), so DPS can use it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from svdd_lightning.checkpoints import load_state, read_checkpoint, resolve_path
from svdd_lightning.errors import CheckpointError, ConfigError
from svdd_lightning.networks import known_networks
from svdd_lightning.rewards.base import Reward

TASKS = ("regression", "classification")
# The only classes an oracle checkpoint may ask to be built (its metadata names one).
NETWORK_MODULES = "svdd_lightning.networks."


def read_oracle_metadata(checkpoint: str) -> dict[str, Any]:
    """The metadata of an oracle checkpoint, checked to describe a network we can rebuild."""
    meta = read_checkpoint(checkpoint).get("svdd", {})
    path = resolve_path(checkpoint)
    if meta.get("kind") != "oracle":
        raise CheckpointError(
            f"checkpoint {path} holds a {meta.get('kind', 'unknown')} model, but an oracle (reward model) was "
            f"expected. Train one with `python train.py stage=oracle domain=... data.path=TABLE` and pass its "
            f"oracle.ckpt."
        )
    network = meta.get("network")
    if not isinstance(network, dict) or "_target_" not in network or meta.get("task") not in TASKS:
        raise CheckpointError(
            f"checkpoint {path} lacks the network description (class and arguments) or task an oracle "
            f"checkpoint records; it was not written by `python train.py stage=oracle`. Retrain it with that stage."
        )
    return meta


def build_oracle_network(checkpoint: str, *, domain: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the oracle network described in the checkpoint's metadata and load its weights.
    Returns the frozen network (eval mode) and the metadata. Only the project's known networks are
    built (svdd_lightning/networks/__init__.py), never a class a file names."""
    meta = read_oracle_metadata(checkpoint)
    description = dict(meta["network"])
    target = str(description.pop("_target_"))
    module, _, name = target.rpartition(".")
    known = known_networks()
    if not module.startswith(NETWORK_MODULES) or name not in known:
        raise CheckpointError(
            f"checkpoint {resolve_path(checkpoint)} names the network class {target}, which is not one of this "
            f"project's networks ({', '.join(known)}); refusing to build a class a file names. Train the oracle "
            f"with `python train.py stage=oracle` using a network from svdd_lightning.networks.")
    try:
        network = known[name](**description)
    except Exception as exc:  # an argument error from a class that changed since training
        raise CheckpointError(
            f"checkpoint {resolve_path(checkpoint)} describes the network {target} that could not be built here "
            f"({type(exc).__name__}: {exc}). Use the code version it was trained with, or retrain."
        ) from exc
    load_state(network, checkpoint, kind="oracle", domain=domain, prefix="network.")
    return network.eval().requires_grad_(False), meta


class OracleReward(Reward):
    """A reward model written by ``train.py stage=oracle``: regression -> predicted label,
    classification -> log-probability of ``target_class``."""

    name: ClassVar[str] = "oracle"
    is_differentiable: ClassVar[bool] = True

    def __init__(self, *, checkpoint: str, target_class: int | None = None, domain: str | None = None) -> None:
        """
        Args:
            checkpoint: an ``oracle.ckpt`` written by ``train.py stage=oracle``.
            target_class: the class whose log-probability is the reward (classification oracles
                only; required there, must be None for regression oracles).
            domain: when set, the checkpoint must have been trained for this domain.
        """
        super().__init__()
        network, meta = build_oracle_network(checkpoint, domain=domain)
        self.network = network
        self.task: str = meta["task"]
        self.metadata = meta
        self.input_shape = tuple(meta.get("input_shape") or ())
        path = resolve_path(checkpoint)
        if self.task == "classification":
            num_classes = int(meta["num_classes"])
            names = meta.get("class_names") or [str(k) for k in range(num_classes)]
            if target_class is None or not 0 <= int(target_class) < num_classes:
                raise ConfigError(
                    f"the classification oracle {path} needs reward.target_class in 0..{num_classes - 1} "
                    f"(classes {', '.join(names)}); got {target_class}."
                )
            self.target_class = int(target_class)
            self.register_buffer("label_mean", torch.zeros(()), persistent=False)
            self.register_buffer("label_std", torch.ones(()), persistent=False)
        else:
            if target_class is not None:
                raise ConfigError(
                    f"the oracle {path} is a regression model of {meta.get('label_columns')}; it has no classes, so "
                    f"drop reward.target_class={target_class}."
                )
            self.target_class = None
            self.register_buffer("label_mean", torch.tensor(float(meta.get("label_mean", 0.0))), persistent=False)
            self.register_buffer("label_std", torch.tensor(float(meta.get("label_std", 1.0))), persistent=False)
        self.checkpoint = str(path)

    def check_input(self, x0: Tensor) -> None:
        shape = self.input_shape
        if shape and tuple(x0.shape[1 : 1 + len(shape)]) != shape:
            raise ConfigError(
                f"the oracle {self.checkpoint} was trained on inputs of shape {shape}, but the samples have shape "
                f"{tuple(x0.shape[1:])}. Decode with the oracle's domain settings (e.g. domain.seq_len) or retrain "
                f"the oracle on data of this shape."
            )

    def forward(self, x0: Tensor) -> Tensor:
        self.check_input(x0)
        out = self.network(x0).float()
        if self.task == "classification":
            return torch.log_softmax(out, dim=-1)[:, self.target_class]
        return out.reshape(x0.shape[0]) * self.label_std + self.label_mean
