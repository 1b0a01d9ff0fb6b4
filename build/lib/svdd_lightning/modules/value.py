"""SVDD-MC value regression: every stored x_t of a rollout is regressed onto r(x_0) with MSE
(on standardised rewards; the scale is kept in the value's buffers)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError, SpearmanCorrCoef

from svdd_lightning.modules.metadata import CheckpointMetadataMixin
from svdd_lightning.values.learned import LearnedValue


class ValueRegressionModule(CheckpointMetadataMixin):
    checkpoint_kind = "value"

    def __init__(self, *, value: LearnedValue, domain: str, reward_name: str, lr: float = 1e-3,
                 weight_decay: float = 0.0, reward_config: dict | None = None) -> None:
        """``reward_config``: the reward's settings (e.g. digit's target_class), recorded so that decoding
        with the same reward under other settings is refused: the value estimates that reward only."""
        super().__init__()
        self.value = value
        self.domain = domain
        self.reward_name = reward_name
        self.reward_config = reward_config
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_mse = MeanSquaredError()
        self.val_spearman = SpearmanCorrCoef()
        # Per noise-level bucket (t / T in quarters): where along the chain the value is informative.
        self.num_buckets = 4
        self.bucket_mse = torch.nn.ModuleList(MeanSquaredError() for _ in range(self.num_buckets))
        self.bucket_spearman = torch.nn.ModuleList(SpearmanCorrCoef() for _ in range(self.num_buckets))

    def checkpoint_metadata(self):
        meta = {**super().checkpoint_metadata(), "reward": self.reward_name}
        if self.reward_config is not None:
            meta["reward_config"] = self.reward_config
        return meta

    def on_fit_start(self) -> None:
        rewards = self.trainer.datamodule.train_set.rewards.float()
        self.value.set_target_scale(rewards.mean().item(), rewards.std().item() if rewards.numel() > 1 else 1.0)

    def training_step(self, batch, batch_idx):
        pred = self.value.standardized(batch["x_t"], batch["t"])
        target = (batch["reward"] - self.value.target_mean) / self.value.target_std
        loss = F.mse_loss(pred, target)
        self.log("train/mse_standardized", loss, prog_bar=True, batch_size=pred.shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        pred = self.value(batch["x_t"], batch["t"])  # reward units
        self.val_mse(pred, batch["reward"])
        self.val_spearman(pred, batch["reward"])
        self.log("val/mse", self.val_mse, prog_bar=True, batch_size=pred.shape[0])
        self.log("val/spearman", self.val_spearman, prog_bar=True, batch_size=pred.shape[0])
        frac = batch["t"].float() / self.value.num_steps
        bucket = (frac * self.num_buckets).long().clamp(0, self.num_buckets - 1)
        for k in range(self.num_buckets):
            chosen = bucket == k
            if int(chosen.sum()) < 2:
                continue
            self.bucket_mse[k](pred[chosen], batch["reward"][chosen])
            self.bucket_spearman[k](pred[chosen], batch["reward"][chosen])
            name = f"t{k * 100 // self.num_buckets}-{(k + 1) * 100 // self.num_buckets}pct"
            self.log(f"val_by_noise/mse_{name}", self.bucket_mse[k], batch_size=int(chosen.sum()))
            self.log(f"val_by_noise/spearman_{name}", self.bucket_spearman[k], batch_size=int(chosen.sum()))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.value.network.parameters(), lr=self.lr, weight_decay=self.weight_decay)
