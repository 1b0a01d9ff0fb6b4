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

from lightning.pytorch.callbacks import BasePredictionWriter
from svdd_lightning.atomic import atomic_torch_save
from svdd_lightning.checkpoints import load_tensors_only
from svdd_lightning.predictions import done_starts, merge_batches, shard_path, shard_paths


class ShardWriter(BasePredictionWriter):
    def __init__(self, *, directory: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.directory = Path(directory)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # atomic: a crash never leaves a half-written shard
        atomic_torch_save([prediction], shard_path(self.directory, int(prediction["index"][0])))

    def shard_paths(self) -> list[Path]:
        return shard_paths(self.directory)

    def done_starts(self) -> set[int]:
        """First global index of every batch already written (for resuming)."""
        return done_starts(self.directory)

    def collect(self) -> dict[str, Any]:
        """Every rank's batches, merged in index order (call on rank zero after a barrier)."""
        return read_shards(self.shard_paths())


def read_shards(paths: list[Path]) -> dict[str, Any]:
    batches: list[dict[str, Any]] = []
    for path in paths:
        batches.extend(load_tensors_only(path))
    return merge_batches(batches)
