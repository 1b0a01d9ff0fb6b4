"""The decode 'data': global sample indices 0..N-1, batched. Under DDP Lightning's predict
sampler splits them across processes without duplicates; each batch seeds its generators from
its indices, so sample i is the same on any number of devices."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset


class IndexDataset(Dataset):
    def __init__(self, num_samples: int) -> None:
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> int:
        return i


class SeedDataModule(L.LightningDataModule):
    def __init__(self, *, num_samples: int, batch_size: int) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(IndexDataset(self.num_samples), batch_size=self.batch_size, shuffle=False,
                          collate_fn=lambda items: torch.tensor(items, dtype=torch.long))
