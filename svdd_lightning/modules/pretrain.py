"""Pre-training a domain's diffusion model (stands in for the large public models of the paper)."""

from __future__ import annotations

from typing import Any

import torch

from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.modules.metadata import CheckpointMetadataMixin


class DiffusionPretrainModule(CheckpointMetadataMixin):
    checkpoint_kind = "diffusion"

    def __init__(self, *, diffusion: Diffusion, domain: str, input_key: str = "tokens", lr: float = 1e-3,
                 weight_decay: float = 0.0, warmup_steps: int = 200,
                 domain_metadata: dict[str, Any] | None = None,
                 model_description: dict[str, Any] | None = None) -> None:
        """``domain_metadata``: what the domain asks the checkpoint to record (``Domain.checkpoint_metadata``,
        e.g. the molecules' SELFIES vocabulary), so that decoding with a domain that disagrees is refused
        instead of decoding nonsense. ``model_description``: the diffusion's config node
        (svdd_lightning/model_description.py), so that the checkpoint alone rebuilds the model."""
        super().__init__()
        self.diffusion = diffusion
        self.domain = domain
        self.domain_metadata = dict(domain_metadata or {})
        self.model_description = model_description
        self.input_key = input_key
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps

    def checkpoint_metadata(self):
        described = {"model": self.model_description} if self.model_description else {}
        return {**super().checkpoint_metadata(), **self.domain_metadata, **described}

    def training_step(self, batch, batch_idx):
        loss = self.diffusion.training_loss(batch[self.input_key])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch[self.input_key].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.diffusion.training_loss(batch[self.input_key])
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch[self.input_key].shape[0])

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.diffusion.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        warmup = max(1, self.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
