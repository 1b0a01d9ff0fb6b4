"""Writes every predicted batch as its own shard; rank zero merges them in index order.

Each batch of global indices is written, as soon as it is done, to ``<dir>/batch-<first index>.pt``
(temporary name, then rename, so a crash never leaves half a shard), by whichever rank decoded it:
no gather of large tensors through the process group. A run that is killed keeps every finished
batch, and re-running the same command decodes only the missing ones (``done_starts``). After a
barrier, rank zero reads all shards and returns one dict sorted by global index, with duplicates
(if any) rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from svdd_lightning.atomic import atomic_torch_save
from svdd_lightning.checkpoints import load_tensors_only


class ShardWriter(BasePredictionWriter):
    def __init__(self, *, directory: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.directory = Path(directory)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # atomic: a crash never leaves a half-written shard
        atomic_torch_save([prediction], self.directory / f"batch-{int(prediction['index'][0]):010d}.pt")

    def shard_paths(self) -> list[Path]:
        return sorted(self.directory.glob("batch-*.pt"))

    def done_starts(self) -> set[int]:
        """First global index of every batch already written (for resuming)."""
        return {int(p.stem.split("-")[1]) for p in self.shard_paths()}


def merge_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-batch prediction dicts and sort them by global sample index."""
    if not batches:
        raise ValueError("no predictions to merge")
    index = torch.cat([b["index"] for b in batches])
    order = torch.argsort(index)
    if torch.unique(index).numel() != index.numel():
        raise RuntimeError("duplicate sample indices across shards; the sampler split is broken")
    merged: dict[str, Any] = {"index": index[order]}
    for key, value in batches[0].items():
        if key == "index":
            continue
        if isinstance(value, torch.Tensor):
            merged[key] = torch.cat([b[key] for b in batches])[order]
        else:
            merged[key] = [b[key] for b in batches]
    return merged


def read_shards(paths: list[Path]) -> dict[str, Any]:
    batches: list[dict[str, Any]] = []
    for path in paths:
        batches.extend(load_tensors_only(path))
    return merge_batches(batches)
