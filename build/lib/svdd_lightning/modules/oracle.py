"""Training a reward oracle on labelled data (``train.py stage=oracle``).

regression: one label column; the network is trained with MSE on standardised labels
(z = (y - mean) / std of the training labels), and the reward rescales its output back to
label units. Validation logs ``val/mse`` (label units), ``val/pearson`` and ``val/spearman``.
classification: integer classes; cross-entropy, validation logs ``val/loss`` and
``val/accuracy``.

The checkpoint (kind ``oracle``) records the network's class (one of the known networks) and
constructor arguments, so :class:`svdd_lightning.rewards.oracle.OracleReward` rebuilds it from the
file alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MeanSquaredError, PearsonCorrCoef, SpearmanCorrCoef
from torchmetrics.classification import MulticlassAccuracy

from svdd_lightning.errors import ConfigError
from svdd_lightning.modules.metadata import CheckpointMetadataMixin
from svdd_lightning.networks import describe_network

TASKS = ("regression", "classification")


class OracleModule(CheckpointMetadataMixin):
    checkpoint_kind = "oracle"

    def __init__(
        self,
        *,
        network: nn.Module,
        domain: str,
        task: Literal["regression", "classification"],
        input_key: str,
        input_shape: Sequence[int] | None = None,
        label_columns: Sequence[str] | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        label_mean: float = 0.0,
        label_std: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if task == "classification" and (num_classes is None or num_classes < 2):
            raise ValueError(f"a classification oracle needs num_classes >= 2, got {num_classes}")
        if not label_std > 0:
            raise ValueError(f"label_std must be positive, got {label_std}")
        self.network = network
        # What the checkpoint records so the reward can rebuild it: one of the known network classes
        # (svdd_lightning/networks/__init__.py) and the arguments it was built with.
        self.network_description = describe_network(network)
        self.domain = domain
        self.task = task
        self.input_key = input_key
        self.input_shape = None if input_shape is None else [int(s) for s in input_shape]
        self.label_columns = None if label_columns is None else list(label_columns)
        self.num_classes = num_classes
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.label_mean = float(label_mean)
        self.label_std = float(label_std)
        self.lr = lr
        self.weight_decay = weight_decay
        self.final_metrics: dict[str, float] = {}
        self.val_loss = MeanMetric()
        if task == "regression":
            self.val_mse = MeanSquaredError()
            self.val_pearson = PearsonCorrCoef()
            with warnings.catch_warnings():  # its note about buffering every prediction: the val set is small
                warnings.simplefilter("ignore", UserWarning)
                self.val_spearman = SpearmanCorrCoef()
        else:
            self.val_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def checkpoint_metadata(self) -> dict[str, Any]:
        meta = {
            **super().checkpoint_metadata(),
            "task": self.task,
            "network": self.network_description,
            "input_key": self.input_key,
            "input_shape": self.input_shape,
            "label_columns": self.label_columns,
            "val_metrics": dict(self.final_metrics),
        }
        if self.task == "regression":
            meta.update(label_mean=self.label_mean, label_std=self.label_std)
        else:
            meta.update(num_classes=self.num_classes, class_names=self.class_names)
        return meta

    # -- steps --------------------------------------------------------------------------- #

    def _targets(self, batch: dict[str, Tensor]) -> Tensor:
        labels = batch["labels"]
        if self.task == "classification":
            return labels.reshape(-1).long()
        return labels.reshape(labels.shape[0], -1)[:, 0].float()

    def _loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(out.float(), y)
        return F.mse_loss(out.float().reshape(-1), (y - self.label_mean) / self.label_std)

    def training_step(self, batch, batch_idx):
        y = self._targets(batch)
        loss = self._loss(self.network(batch[self.input_key]), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=y.shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        y = self._targets(batch)
        out = self.network(batch[self.input_key])
        n = y.shape[0]
        self.val_loss.update(self._loss(out, y), weight=n)
        self.log("val/loss", self.val_loss, prog_bar=True, batch_size=n)
        if self.task == "classification":
            self.val_accuracy(out.float(), y)
            self.log("val/accuracy", self.val_accuracy, prog_bar=True, batch_size=n)
        else:
            pred = out.float().reshape(-1) * self.label_std + self.label_mean
            self.val_mse(pred, y)
            self.val_pearson(pred, y)
            self.val_spearman(pred, y)
            self.log("val/mse", self.val_mse, batch_size=n)
            self.log("val/pearson", self.val_pearson, prog_bar=True, batch_size=n)
            self.log("val/spearman", self.val_spearman, prog_bar=True, batch_size=n)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.network.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def oracle_task(data: Any, task: str) -> tuple[str, dict[str, Any]]:
    """The oracle's task (``task``, or for ``auto`` from the label type) and the label facts its module
    takes (num_classes / class_names, or label_mean / label_std), checked against a set-up DataModule."""
    labels = getattr(data, "train_labels", None)
    where = getattr(data, "data_path", None) or "the embedded data"
    if labels is None or labels.numel() == 0 or (not labels.dtype.is_floating_point and bool((labels < 0).all())):
        raise ConfigError(
            f"the oracle stage needs labelled data, but {where} has no labels. Point data.path at a table with a "
            f"label column and name it (data.label_columns=[COLUMN]), or for images at a .npz with 'labels' or a "
            f"folder of class sub-folders.")
    if task not in ("auto", *TASKS):
        raise ConfigError(f"oracle.task={task} is unknown; use auto, regression or classification.")
    task = task if task != "auto" else ("regression" if labels.dtype.is_floating_point else "classification")
    if task == "classification":
        flat = labels.reshape(-1)
        if labels.dtype.is_floating_point and not bool((flat == flat.round()).all() and (flat >= 0).all()):
            raise ConfigError("oracle.task=classification needs integer class labels 0, 1, ...; use oracle.task=regression.")
        num_classes = int(getattr(data, "num_classes", None) or int(flat.max()) + 1)
        return task, {"num_classes": num_classes, "class_names": getattr(data, "class_names", None)}
    label_columns = list(getattr(data, "label_names", None) or []) or None
    if labels.dim() == 2 and labels.shape[1] != 1:
        raise ConfigError(
            f"the oracle stage regresses one label column, but data.label_columns={label_columns}; train one "
            f"oracle per column, e.g. data.label_columns=[{label_columns[0]}].")
    values = labels.float().reshape(-1)
    std = float(values.std()) if values.numel() > 1 else 1.0
    return task, {"label_mean": float(values.mean()), "label_std": std if std > 0 else 1.0}


def check_oracle_network(network: nn.Module, inputs: Tensor, *, task: str, num_classes: int | None) -> None:
    """Refuse a network whose output per input does not fit the task (one logit per class, or one number)."""
    with torch.no_grad():
        out = network(inputs)
    fits = [(num_classes,)] if task == "classification" else [(), (1,)]
    if tuple(out.shape[1:]) not in fits:
        raise ConfigError(f"the oracle network {type(network).__name__} returns shape {tuple(out.shape[1:])} per input, "
                          f"but a {task} oracle needs {fits[0]} (one logit per class, or one number); set "
                          f"oracle.network to a fitting network.")
