"""The base of the DataModules whose whole data set is a few tensors in memory (sequences, molecules, images).

A subclass reads its file and fills ``train_<column>`` / ``val_<column>`` for each name of ``COLUMNS``; the base
finds the file, builds the tables once, and serves them: item i of a split is ``{column: tensor[i]}``, training
batches shuffled by a generator seeded with ``seed`` (the same order on every run), validation in file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from svdd_lightning.errors import ConfigError, data_error
from svdd_lightning.paths import REPO_ROOT, resolve_path


class TensorTable(Dataset):
    """Rows of equal-length named tensors: item i is ``{name: tensor[i]}`` in the columns' order."""

    def __init__(self, columns: dict[str, Tensor]) -> None:
        lengths = {name: t.shape[0] for name, t in columns.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"a table needs columns of one length, got {lengths}")
        self.columns = columns
        self.length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {name: t[i] for name, t in self.columns.items()}


class TableDataModule(L.LightningDataModule):
    """Finding the file, building once and serving the tables; subclasses read, encode and split.

    ``COLUMNS``: the batch keys; the first is always there after :meth:`setup`, the others are left out of the
    batches while None (sequences without labels). ``DROP_LAST``: drop a last partial training batch when there is
    more than one batch."""

    COLUMNS: ClassVar[tuple[str, ...]]
    DROP_LAST: ClassVar[bool] = False

    def __init__(self, *, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)

    # -- file ---------------------------------------------------------------------------- #

    def _locate(self, given: str, *, fix: str, default: bool = False, folders: bool = False) -> Path:
        """``given`` as :func:`resolve_path` finds it; a missing file names the places looked at. ``default``: the
        file is the embedded default (`make setup` fetches it); ``folders``: any existing path will do."""
        resolved = resolve_path(given)
        if resolved.exists() if folders else resolved.is_file():
            return resolved
        p = Path(given).expanduser()
        places = [p] if p.is_absolute() else [Path.cwd() / p, REPO_ROOT / p]
        tried = " and ".join(dict.fromkeys(str(x) for x in places))
        if default:
            raise data_error(given, f"is missing (looked at {tried}).", fix, kind="the default data file")
        raise data_error(given, f"does not exist (looked at {tried}).", fix)

    # -- tables -------------------------------------------------------------------------- #

    def setup(self, stage: str | None = None) -> None:
        # Once: fit, validate and test share the tables (and a second read of a large file would cost minutes).
        if getattr(self, f"train_{self.COLUMNS[0]}") is None:
            self.build()

    def build(self) -> None:
        """Read the data and set ``train_<column>`` / ``val_<column>`` for every column."""
        raise NotImplementedError

    # -- loaders ------------------------------------------------------------------------- #

    def _loader(self, split: str) -> DataLoader:
        first, *rest = self.COLUMNS
        head = getattr(self, f"{split}_{first}")
        if head is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        columns = {first: head}
        columns.update({name: t for name in rest if (t := getattr(self, f"{split}_{name}")) is not None})
        train = split == "train"
        return DataLoader(
            TensorTable(columns),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and self.DROP_LAST and head.shape[0] > self.batch_size,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")


def seeded_split(n: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, validation) indices, each sorted: a permutation seeded with ``seed`` holds out round(val_fraction * n)
    items (at least one, and one left to train, when val_fraction > 0 and n >= 2), so every run and rank agree."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = min(n - 1, max(1, round(val_fraction * n))) if val_fraction > 0 and n >= 2 else 0
    return perm[n_val:].sort().values, perm[:n_val].sort().values


# The options every table DataModule checks, each with the message users know.

def check_positive(name: str, value: int | None, *, or_null: bool = False) -> None:
    if value is None and or_null:
        return
    if int(value) <= 0:
        raise ConfigError(f"data.{name} must be a positive integer{' or null' if or_null else ''}, got {value}.")


def check_val_fraction(value: float, *, example: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1) (e.g. {example}), got {value}.")


def check_workers(value: int) -> None:
    if int(value) < 0:
        raise ConfigError(f"data.num_workers must be >= 0, got {value}.")
