"""What decoding predicts over: global sample indices 0..N-1 in batches of consecutive indices, and
how per-batch predictions are merged back in index order.

Each item of the dataset is a whole batch, ``[k * B, (k + 1) * B)``, so under DDP Lightning's predict
sampler hands whole batches to processes (without duplicates) and batch k holds the same indices on
any number of devices. Each batch seeds its generators from its indices, so sample i is the same on 1
CPU or N GPUs, and so is every population of decoders whose batch members interact (SMC, SVDD-R).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from svdd_lightning.errors import ConfigError


class IndexBatchDataset(Dataset):
    """Batches [k * B, (k + 1) * B) of 0..N-1, leaving out those whose first index is in ``skip``
    (batches an interrupted run already wrote)."""

    def __init__(self, num_samples: int, batch_size: int, skip: set[int] | frozenset[int] = frozenset()) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.starts = [s for s in range(0, num_samples, batch_size) if s not in skip]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, k: int) -> torch.Tensor:
        if not 0 <= k < len(self):
            raise IndexError(k)
        start = self.starts[k]
        return torch.arange(start, min(start + self.batch_size, self.num_samples), dtype=torch.long)


def index_loader(num_samples: int, batch_size: int, skip: set[int] | frozenset[int] = frozenset()) -> DataLoader:
    """The predict dataloader over :class:`IndexBatchDataset` (batch_size=None: its items already are batches)."""
    return DataLoader(IndexBatchDataset(num_samples, batch_size, skip), batch_size=None, shuffle=False)


def merge_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-batch prediction dicts and sort them by global sample index."""
    if not batches:
        raise ValueError("no predictions to merge")
    index = torch.cat([b["index"] for b in batches])
    order = torch.argsort(index)
    if torch.unique(index).numel() != index.numel():
        raise RuntimeError("duplicate sample indices across shards; the sampler split is broken")
    keys = set(batches[0])
    differing = sorted({k for b in batches for k in set(b) ^ keys})
    if differing:  # shards of a resumed run written by another version: merged, they would mix two formats
        raise ConfigError(f"prediction batches disagree on their keys ({', '.join(differing)}): the shards of an "
                         f"interrupted run were written by another version; rerun with overwrite=true.")
    merged: dict[str, Any] = {"index": index[order]}
    for key, value in batches[0].items():
        if key == "index":
            continue
        if isinstance(value, torch.Tensor):
            merged[key] = torch.cat([b[key] for b in batches])[order]
        else:  # per-batch records (e.g. calls), one per batch
            merged[key] = [b[key] for b in batches]
    return merged


def shard_path(directory: Path, start: int) -> Path:
    """Where a prediction writer keeps the batch starting at global index ``start``."""
    return Path(directory) / f"batch-{int(start):010d}.pt"


def shard_paths(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob("batch-*.pt"))


def done_starts(directory: Path) -> set[int]:
    """First global index of every batch already written (for resuming)."""
    return {int(p.stem.split("-")[1]) for p in shard_paths(directory)}
