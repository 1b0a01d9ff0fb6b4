"""Sequence data: read FASTA / CSV / TSV files (datamodules/sequence_files.py), cut them into fixed-length windows
(datamodules/windowing.py), encode them with the domain's alphabet (svdd_lightning/domains/sequences.py) and serve
them as a LightningDataModule. Which letters a file may hold, how they are normalised (an RNA domain reads T as U)
and how they become tokens is the domain's business, not this module's.

Every bad input raises :class:`svdd_lightning.errors.DataError` (or ``ConfigError`` for an
option that cannot work) with a one-paragraph message naming the file and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datamodules.base import TableDataModule, check_positive, check_val_fraction, check_workers
from datamodules.sequence_files import ACCEPTED, FASTA_SUFFIXES, TABLE_SUFFIXES, check_letters, read_sequences
from datamodules.windowing import describe_windows, encode_rows, exact_rows, windows, windows_with_source
from svdd_lightning.domains.nucleotides import NucleotideDomain
from svdd_lightning.domains.sequences import AlphabetError, SequenceDomain
from svdd_lightning.errors import ConfigError, data_error
from svdd_lightning.paths import REPO_ROOT
from svdd_lightning.ranges import AtLeastOne, Probability

# The readers and windowing moved to their own modules; these names are still imported from here.
__all__ = ["ACCEPTED", "FASTA_SUFFIXES", "TABLE_SUFFIXES", "SequenceDataModule", "check_letters", "exact_rows",
           "read_sequences", "windows"]

log = logging.getLogger("svdd_lightning.data")


class SequenceDataModule(TableDataModule):
    """Fixed-length sequences of a sequence domain (DNA and RNA by default) read from a FASTA/CSV/TSV file.

    After :meth:`setup`: ``stats`` (read/window counts), ``train_tokens``/``val_tokens``
    (long (N, L)), ``train_labels``/``val_labels`` (float (N, K) or None), ``label_names``
    and ``data_path`` (the resolved file). Batches are ``{"tokens": (B, L) long}`` plus
    ``{"labels": (B, K) float}`` when ``label_columns`` is given.

    Train and validation are split by *source sequence* (all windows of one FASTA record go to
    the same side), so overlapping or neighbouring windows do not leak into validation."""

    COLUMNS = ("tokens", "labels")

    def __init__(
        self,
        *,
        domain: SequenceDomain | None = None,
        alphabet: str | None = None,
        path: str | None,
        default_path: str | None = None,
        seq_len: int,
        batch_size: AtLeastOne = 128,
        val_fraction: Probability = 0.05,
        max_windows: int | None = None,
        stride: int | None = None,
        sequence_column: str = "sequence",
        label_columns: Sequence[str] | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        if domain is None:
            if not alphabet:
                raise ConfigError("the data needs a domain (data.domain) or an alphabet; give its letters, e.g. 'ACGT'.")
            domain = NucleotideDomain(alphabet=alphabet)  # the shorthand of the DNA/RNA DataModules
        if path is None and default_path is None:
            raise ConfigError("no data file: set data.path=YOUR.fasta (or .csv/.tsv, optionally .gz).")
        check_positive("seq_len", seq_len)
        check_positive("batch_size", batch_size)
        check_positive("max_windows", max_windows, or_null=True)
        check_positive("stride", stride, or_null=True)
        check_val_fraction(val_fraction, example=0.05)
        check_workers(num_workers)
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.domain = domain
        self.alphabet = domain.alphabet
        self.path = None if path is None else str(path)
        self.default_path = None if default_path is None else str(default_path)
        self.seq_len = int(seq_len)
        self.val_fraction = float(val_fraction)
        self.max_windows = None if max_windows is None else int(max_windows)
        self.stride = None if stride is None else int(stride)
        self.sequence_column = sequence_column
        self.label_columns = list(label_columns) if label_columns else None

        self.stats: dict[str, Any] | None = None
        self._split_by = "none"
        self.data_path: Path | None = None
        self.label_names: list[str] | None = self.label_columns
        self.train_tokens: Tensor | None = None
        self.val_tokens: Tensor | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    def _file(self) -> Path:
        if self.path is not None:
            return self._locate(self.path, fix="Check data.path (a relative path is tried in the working directory, "
                                              "then in the repository root).")
        assert self.default_path is not None
        return self._locate(self.default_path, default=True,
                            fix=f"Run `make setup` in {REPO_ROOT} to fetch the embedded data, or point data.path at "
                                f"your own FASTA/CSV/TSV file.")

    def build(self) -> None:
        path = self._file()
        sequences, labels = read_sequences(
            path, sequence_column=self.sequence_column, label_columns=self.label_columns,
            known_letters=self.domain.known_letters(),
        )
        if labels is not None:
            kept, values, groups, stats = exact_rows(
                sequences, labels, seq_len=self.seq_len, domain=self.domain, source=path
            )
        else:
            kept, groups, stats = windows_with_source(
                sequences, seq_len=self.seq_len, stride=self.stride, domain=self.domain
            )
            values = None
        del sequences
        if not kept:
            raise data_error(path, f"yields no usable sequence of length {self.seq_len} over {self.alphabet}: "
                                   f"{describe_windows(stats, self.seq_len)}.",
                             f"Lower data.seq_len, check that the file holds {self.alphabet} sequences, or use "
                             f"another file.")

        gen = torch.Generator().manual_seed(self.seed)
        index = np.arange(len(kept))
        if self.max_windows is not None and len(kept) > self.max_windows:
            pick = torch.randperm(len(kept), generator=gen)[: self.max_windows]
            index = np.sort(pick.numpy())
        stats["used"] = len(index)

        groups_arr = np.asarray(groups, dtype=np.int64)[index]
        is_val = self._split(groups_arr, gen)
        if not (~is_val).any():
            raise data_error(path, f"leaves no training data after holding out data.val_fraction="
                                   f"{self.val_fraction} of {len(index)} sequences.",
                             "Lower data.val_fraction or provide more data.")
        train_idx = index[~is_val]
        val_idx = index[is_val]
        try:
            self.train_tokens = encode_rows(kept, train_idx, self.seq_len, self.domain)
            self.val_tokens = encode_rows(kept, val_idx, self.seq_len, self.domain)
        except AlphabetError as exc:  # pragma: no cover - filtered above
            raise data_error(path, f": {exc}.", "Fix or remove that sequence.") from exc
        del kept
        if values is not None:
            self.train_labels = torch.from_numpy(values[train_idx]).contiguous()
            self.val_labels = torch.from_numpy(values[val_idx]).contiguous()
        stats["train"] = len(train_idx)
        stats["val"] = len(val_idx)
        stats["split_by"] = self._split_by
        self.stats = stats
        self.data_path = path
        log.info(
            "data %s: %s; using %d (train %d, val %d split by %s) of length %d",
            path,
            describe_windows(stats, self.seq_len),
            stats["used"],
            stats["train"],
            stats["val"],
            stats["split_by"],
            self.seq_len,
        )

    def _split(self, groups: np.ndarray, gen: torch.Generator) -> np.ndarray:
        """Boolean mask of validation items: whole source groups, in seeded random order,
        until at least val_fraction of the items (at least one item when val_fraction > 0).
        Falls back to a per-item split when whole groups would overshoot the target more than
        twofold or leave nothing to train on (e.g. a FASTA holding a single chromosome)."""
        n = len(groups)
        is_val = np.zeros(n, dtype=bool)
        self._split_by = "none"
        if self.val_fraction <= 0.0 or n < 2:
            return is_val
        target = min(n - 1, max(1, int(round(self.val_fraction * n))))
        unique, counts = np.unique(groups, return_counts=True)
        order = torch.randperm(len(unique), generator=gen).numpy()
        cum = np.cumsum(counts[order])
        k = int(np.searchsorted(cum, target)) + 1
        chosen = unique[order[:k]]
        is_val[np.isin(groups, chosen)] = True
        if is_val.sum() <= 2 * target and not is_val.all():
            self._split_by = "sequence"
            return is_val
        # Too few or too uneven source sequences (e.g. one chromosome): split windows instead.
        self._split_by = "window"
        is_val[:] = False
        is_val[torch.randperm(n, generator=gen)[:target].numpy()] = True
        return is_val
