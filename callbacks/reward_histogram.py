"""Logs the decoded rewards to the experiment logger (W&B): a histogram with one entry per
sample, the reward statistics and, when known, the pre-trained reference beside them.

Rewards are gathered with a torchmetrics ``CatMetric``, whose ``compute`` syncs across DDP
processes, so the histogram counts every sample exactly once. Only rank zero logs.
"""

from __future__ import annotations

import lightning as L
import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from torchmetrics.aggregation import CatMetric


class RewardHistogramCallback(L.Callback):
    def __init__(self, *, reward_name: str, reference: np.ndarray | None = None,
                 earlier: np.ndarray | None = None) -> None:
        """``earlier``: rewards of batches an interrupted run already wrote (a resumed decode)."""
        self.reward_name = reward_name
        self.reference = reference
        self.earlier = earlier
        self.rewards = CatMetric()

    def on_predict_start(self, trainer, pl_module) -> None:
        self.rewards = self.rewards.to(pl_module.device)
        self.rewards.reset()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.rewards.update(outputs["rewards"].to(pl_module.device))

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        values = self.rewards.compute().detach().cpu().numpy().reshape(-1)  # all ranks take part in the sync
        self.log_rewards(trainer, values)

    @rank_zero_only
    def log_rewards(self, trainer, values: np.ndarray) -> None:
        if self.earlier is not None and self.earlier.size:
            values = np.concatenate([self.earlier, values])
        logger = trainer.logger
        if logger is None or not hasattr(logger, "experiment"):
            return
        record = {
            "reward/mean": float(values.mean()),
            "reward/median": float(np.median(values)),
            "reward/q90": float(np.quantile(values, 0.9)),
            "reward/count": int(values.size),
        }
        experiment = logger.experiment
        if type(experiment).__module__.startswith("wandb"):
            import wandb

            record["reward/histogram"] = wandb.Histogram(values.tolist())
            if self.reference is not None:
                record["reference/histogram"] = wandb.Histogram(self.reference.tolist())
                record["reference/median"] = float(np.median(self.reference))
                record["reference/q90"] = float(np.quantile(self.reference, 0.9))
            experiment.log(record)
        else:
            logger.log_metrics({k: v for k, v in record.items()}, step=0)
            logger.save()
