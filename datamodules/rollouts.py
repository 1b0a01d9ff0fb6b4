"""Rollouts written once by ``train.py stage=value`` and read for SVDD-MC value regression.

The file holds ``states`` (N, K, *event) at ``steps`` (K,) and ``rewards`` (N,). An item is one
(trajectory, saved step) pair: {"x_t", "t", "reward"}. Train/val split is by trajectory, so
validation states come from trajectories the value net never saw.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from svdd_lightning.checkpoints import load_tensors_only
from svdd_lightning.errors import DataError


class RolloutDataset(Dataset):
    """Items (x_t, t, r(x_0)). With ``renoise``, x_t is drawn afresh from the trajectory's end point
    x_0 every time (``renoise(x0, t)``, the forward process) instead of read from the stored states.
    For masked diffusion this is the same distribution: the sampler reveals positions independently
    of their content, so a rollout's x_t given x_0 masks each position with probability t / T. It
    turns each trajectory into unlimited fresh states and curbs the value net's overfitting."""

    def __init__(self, states: torch.Tensor, steps: torch.Tensor, rewards: torch.Tensor,
                 samples: torch.Tensor | None = None, renoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        self.states, self.steps, self.rewards, self.samples = states, steps, rewards, samples
        self.renoise = renoise
        self.k = steps.shape[0]

    def __len__(self) -> int:
        return self.states.shape[0] * self.k

    def __getitem__(self, i: int) -> dict:
        n, k = divmod(i, self.k)
        if self.renoise is not None:
            x_t = self.renoise(self.samples[n].unsqueeze(0).long(), self.steps[k].view(1))[0]
        else:
            x_t = self.states[n, k]
        return {"x_t": x_t, "t": self.steps[k], "reward": self.rewards[n]}


def load_rollouts(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"rollout file {path} does not exist; run `python train.py stage=value` to write it.")
    try:
        data = load_tensors_only(path)
    except pickle.UnpicklingError as exc:
        raise DataError(f"rollout file {path} holds objects other than tensors and plain containers ({exc}); "
                        f"refusing to load it. Delete it and rerun `python train.py stage=value`.") from exc
    missing = {"states", "steps", "rewards"} - set(data)
    if missing:
        raise DataError(f"rollout file {path} lacks {sorted(missing)}; delete it and rerun `python train.py stage=value`.")
    if not torch.isfinite(data["rewards"]).all():
        raise DataError(f"rollout file {path} holds non-finite rewards; check the reward and rerun the rollouts.")
    return data


class RolloutDataModule(L.LightningDataModule):
    def __init__(self, *, path: str, batch_size: int = 128, val_fraction: float = 0.1, num_workers: int = 0,
                 seed: int = 0, renoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.renoise = renoise
        self.path = path
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.num_workers = num_workers
        self.seed = seed
        self.train_set: RolloutDataset | None = None
        self.val_set: RolloutDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data = load_rollouts(self.path)
        n = data["states"].shape[0]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val = max(1, int(round(n * self.val_fraction))) if n > 1 else 0
        val, train = order[:n_val], order[n_val:]
        samples = data.get("samples")
        if self.renoise is not None and samples is None:
            raise DataError(f"rollout file {self.path} has no end points ('samples'), which renoising needs; "
                            f"write it again with `python train.py stage=value` or set value_training.renoise=false.")
        # Validation always reads the stored states: it measures the value on real rollouts.
        self.train_set = RolloutDataset(data["states"][train], data["steps"], data["rewards"][train],
                                        samples=None if samples is None else samples[train], renoise=self.renoise)
        self.val_set = RolloutDataset(data["states"][val], data["steps"], data["rewards"][val])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=4 * self.batch_size, shuffle=False, num_workers=self.num_workers)
