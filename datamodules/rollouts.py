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


class ResumableLoader(DataLoader):
    """A shuffled DataLoader whose position Lightning saves in its checkpoints (``state_dict``/``load_state_dict``),
    so a stopped value training resumes with the very batches an uninterrupted one would have seen: the stream of
    batches is a function of how many were consumed. Epoch e is shuffled by a generator seeded by (seed, e), not
    by the global RNG. Lightning saves a checkpoint after a batch's step and takes the next batch only after
    that (measured: the batches yielded equal the epoch loop's processed count in every saved checkpoint), so the
    state is the batches yielded in the current epoch."""

    def __init__(self, dataset: Dataset, *, batch_size: int, seed: int, num_workers: int = 0,
                 drop_last: bool = False) -> None:
        self.order = EpochOrder(len(dataset), seed=seed)
        super().__init__(dataset, batch_size=batch_size, sampler=self.order, num_workers=num_workers,
                         drop_last=drop_last)
        self.epoch, self.yielded, self.skip = -1, 0, 0

    def __iter__(self):
        self.epoch += 1
        self.order.set_epoch(self.epoch, skip=self.skip * self.batch_size)
        self.yielded, self.skip = self.skip, 0
        for batch in super().__iter__():
            self.yielded += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches": self.yielded}

    def load_state_dict(self, state: dict) -> None:
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= len(self):  # the epoch was finished: the next batch is the next epoch's first
            epoch, batches = epoch + 1, 0
        self.epoch, self.skip = epoch - 1, batches  # the next __iter__ is that epoch, without its first batches


class EpochOrder(torch.utils.data.Sampler):
    """A permutation of range(n) per epoch from a generator seeded by (seed, epoch), optionally without its first
    ``skip`` items (a resumed epoch)."""

    def __init__(self, n: int, *, seed: int) -> None:
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        from svdd_lightning.ops import sample_seed

        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(sample_seed(self.seed, self.epoch)))
        return iter(order[self.skip:].tolist())


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
        return ResumableLoader(self.train_set, batch_size=self.batch_size, seed=self.seed, num_workers=self.num_workers,
                               drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=4 * self.batch_size, shuffle=False, num_workers=self.num_workers)
