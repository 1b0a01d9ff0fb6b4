"""The decode 'data': global sample indices 0..N-1, in batches of consecutive indices.

Each item of the dataset is a whole batch, ``[k * B, (k + 1) * B)``, so under DDP Lightning's
predict sampler hands whole batches to processes (without duplicates) and batch k holds the
same indices on any number of devices. Each batch seeds its generators from its indices, so
sample i is the same on 1 CPU or N GPUs, and so is every population of decoders whose batch
members interact (SMC, SVDD-R).
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from svdd_lightning.predictions import index_loader


class SeedDataModule(L.LightningDataModule):
    def __init__(self, *, num_samples: int, batch_size: int, skip: set[int] | frozenset[int] = frozenset()) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.skip = frozenset(skip)

    def predict_dataloader(self) -> DataLoader:
        return index_loader(self.num_samples, self.batch_size, self.skip)
