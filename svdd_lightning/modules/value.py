"""SVDD-MC value regression: every stored x_t of a rollout is regressed onto its rollout's r(x_0).

``target="mean"`` (the reference code's): MSE on standardised rewards, so v(x_t) estimates E[r(x_0) | x_t].
``target="soft"`` (the paper's definition of the soft value): v(x_t) = alpha log E[exp(r(x_0) / alpha) | x_t].
One rollout per state gives an unbiased sample of exp(r / alpha), not of its log, so the network's output s is
trained by MSE of exp(s) onto exp((r - r_max) / alpha) (r_max: the training rollouts' largest reward, so every
target is in (0, 1]); its minimiser is exp(s) = E[exp((r - r_max) / alpha) | x_t], and v = r_max + alpha s is the
soft value. The value's buffers then hold r_max and alpha in place of the mean and spread, so LearnedValue reads
both kinds the same way (``target_mean + target_std * s``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError, SpearmanCorrCoef

from svdd_lightning.modules.metadata import CheckpointMetadataMixin
from svdd_lightning.values.learned import LearnedValue


class ValueRegressionModule(CheckpointMetadataMixin):
    checkpoint_kind = "value"

    def __init__(self, *, value: LearnedValue, domain: str, reward_name: str, lr: float = 1e-3,
                 weight_decay: float = 0.0, reward_config: dict | None = None, target: str = "mean",
                 soft_alpha: float | None = None) -> None:
        """``reward_config``: the reward's settings (e.g. digit's target_class), recorded so that decoding
        with the same reward under other settings is refused: the value estimates that reward only.
        ``target``: "mean" or "soft" (see the module docstring); ``soft_alpha`` in reward units (soft only)."""
        super().__init__()
        if target not in ("mean", "soft"):
            raise ValueError(f"value_training.target={target!r} is unknown; use 'mean' (E[r | x_t]) or 'soft' "
                             f"(alpha log E[exp(r / alpha) | x_t])")
        if target == "soft" and not (soft_alpha is not None and soft_alpha > 0):
            raise ValueError(f"value_training.target=soft needs value_training.soft_alpha > 0 (reward units), got "
                             f"{soft_alpha}")
        self.target = target
        self.soft_alpha = None if soft_alpha is None else float(soft_alpha)
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
        meta = {**super().checkpoint_metadata(), "reward": self.reward_name, "value_target": self.target}
        if self.target == "soft":
            meta["soft_alpha"] = self.soft_alpha
        if self.reward_config is not None:
            meta["reward_config"] = self.reward_config
        return meta

    def on_fit_start(self) -> None:
        rewards = self.trainer.datamodule.train_set.rewards.float()
        if self.target == "soft":
            self.value.set_target_scale(rewards.max().item(), self.soft_alpha)
        else:
            self.value.set_target_scale(rewards.mean().item(), rewards.std().item() if rewards.numel() > 1 else 1.0)

    def training_step(self, batch, batch_idx):
        pred = self.value.standardized(batch["x_t"], batch["t"])
        target = (batch["reward"] - self.value.target_mean) / self.value.target_std
        if self.target == "soft":  # exp(s) onto exp((r - r_max) / alpha), both in (0, 1] at the optimum
            pred, target = pred.exp(), target.exp()
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
