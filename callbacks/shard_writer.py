"""Writes each process's predictions as one shard; rank zero merges them in index order.

Under DDP every rank writes ``<dir>/shard-rank<r>.pt`` at the end of the predict epoch (no
gather of large tensors through the process group); after a barrier, rank zero reads all
shards and returns one dict sorted by global index, with duplicates (if any) rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter


class ShardWriter(BasePredictionWriter):
    def __init__(self, *, directory: str | Path) -> None:
        super().__init__(write_interval="epoch")
        self.directory = Path(directory)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"shard-rank{trainer.global_rank}.pt"
        partial = final.with_suffix(".partial")
        torch.save(list(predictions), partial)
        partial.replace(final)  # atomic: a crash never leaves a half-written shard

    def shard_paths(self) -> list[Path]:
        return sorted(self.directory.glob("shard-rank*.pt"))


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
        batches.extend(torch.load(path, map_location="cpu", weights_only=False))
    return merge_batches(batches)
