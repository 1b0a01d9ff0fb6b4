"""Sequence data: read FASTA / CSV / TSV files, cut them into fixed-length windows, encode
them with the domain's alphabet (svdd_lightning/domains/sequences.py) and serve them as a
LightningDataModule. Which letters a file may hold, how they are normalised (an RNA domain reads T
as U) and how they become tokens is the domain's business, not this module's.

Every bad input raises :class:`svdd_lightning.errors.DataError` (or ``ConfigError`` for an
option that cannot work) with a one-paragraph message naming the file and what to do.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from Bio.SeqIO.FastaIO import SimpleFastaParser
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from svdd_lightning.domains.nucleotides import NucleotideDomain
from svdd_lightning.domains.sequences import AlphabetError, SequenceDomain, encode
from svdd_lightning.errors import ConfigError, DataError
from svdd_lightning.paths import REPO_ROOT, resolve_path
from svdd_lightning.ranges import AtLeastOne, Probability

log = logging.getLogger("svdd_lightning.data")

FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
TABLE_SUFFIXES = (".csv", ".tsv")
ACCEPTED = ", ".join(s + z for s in FASTA_SUFFIXES + TABLE_SUFFIXES for z in ("", ".gz"))
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------------------- #


def _format_of(path: Path) -> str:
    """'fasta' or 'table' from the file name (a trailing .gz is ignored)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = Path(name).suffix
    if suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in TABLE_SUFFIXES:
        return "table"
    raise DataError(
        f"data file {path} has an unknown extension {suffix or '(none)'!r}: accepted are "
        f"{ACCEPTED}. Rename the file to one of these (FASTA for raw sequences, CSV/TSV for a "
        f"table with a sequence column) or point data.path at another file."
    )


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _open_text(path: Path):
    """Text handle, transparently gunzipping gzip content whatever the file name says."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="latin-1", newline=None)
    return open(path, encoding="latin-1", newline=None)


def _read_fasta(path: Path, known: frozenset[str] | None) -> list[str]:
    try:
        with _open_text(path) as fh:
            first = ""
            for line in fh:
                if line.strip():
                    first = line.lstrip()
                    break
            if not first:
                raise DataError(
                    f"data file {path} holds no FASTA records (it is empty or only blank lines"
                    f"{' once decompressed' if _is_gzip(path) else ''}). Re-fetch or regenerate it"
                    f" (the embedded default comes from `make setup`), or point data.path at a "
                    f"FASTA file whose records start with '>'."
                )
            if not first.startswith(">"):
                raise DataError(
                    f"data file {path} is not FASTA: its first non-blank line starts with "
                    f"{first[:20].rstrip()!r} instead of '>'. FASTA records look like "
                    f"'>name' followed by sequence lines; if this is a table of sequences, give "
                    f"it a .csv or .tsv extension, otherwise re-fetch or fix the file."
                )
            fh.seek(0)
            records = [(title, seq.upper()) for title, seq in SimpleFastaParser(fh)]
            sequences = [seq for _title, seq in records]
            check_letters(sequences, path, what="record", known=known, names=[title.split()[0] if title else "" for title, _ in records])
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"data file {path} could not be read as FASTA ({type(exc).__name__}: {exc}). "
            f"The file is probably truncated, corrupt or binary; re-fetch it (`make setup` for "
            f"the embedded default) or point data.path at a plain or gzipped FASTA file."
        ) from exc
    if not sequences:
        raise DataError(
            f"data file {path} holds no FASTA records. Re-fetch or regenerate it, or point "
            f"data.path at a FASTA file whose records start with '>'."
        )
    return sequences


def _read_table(
    path: Path, sequence_column: str, label_columns: Sequence[str] | None, known: frozenset[str] | None
) -> tuple[list[str], pd.DataFrame | None]:
    name = path.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith(".tsv") else ","
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            compression="gzip" if _is_gzip(path) else None,
            dtype={sequence_column: str},
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"data file {path} is empty: it has no header line and no rows. Re-fetch or "
            f"regenerate it, or point data.path at a CSV/TSV with a header line naming a "
            f"'{sequence_column}' column."
        ) from exc
    except (pd.errors.ParserError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(
            f"data file {path} could not be parsed as {'TSV' if sep == chr(9) else 'CSV'} "
            f"({type(exc).__name__}: {str(exc).strip()}). Check that it is a "
            f"{'tab' if sep == chr(9) else 'comma'}-separated table with a header line (and "
            f"that a .gz file is not truncated), then retry."
        ) from exc
    if sequence_column not in frame.columns:
        raise DataError(
            f"data file {path} has no column {sequence_column!r}; its columns are "
            f"{list(map(str, frame.columns))}. Name the column that holds the sequences with "
            f"data.sequence_column=NAME."
        )
    if len(frame) == 0:
        raise DataError(
            f"data file {path} has a header but no rows. Point data.path at a table that "
            f"holds sequences."
        )
    column = frame[sequence_column]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise DataError(
            f"data file {path} has an empty {sequence_column!r} cell in data row {row + 1} "
            f"(line {row + 2} counting the header; {int(missing.sum())} such rows in all). "
            f"Remove those rows or fill them in, then retry."
        )
    sequences = [s.strip().upper() for s in column.astype(str)]
    check_letters(sequences, path, what="data row", known=known)

    labels = None
    if label_columns:
        label_columns = list(label_columns)
        absent = [c for c in label_columns if c not in frame.columns]
        if absent:
            raise DataError(
                f"data file {path} lacks the label column(s) {absent}; its columns are "
                f"{list(map(str, frame.columns))}. Set data.label_columns to columns it has "
                f"(or to null to train without labels)."
            )
        labels = pd.DataFrame(index=frame.index)
        for c in label_columns:
            numeric = pd.to_numeric(frame[c], errors="coerce")
            bad = (numeric.isna() & frame[c].notna()).to_numpy()
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(
                    f"data file {path} has a non-numeric value {frame[c].iloc[row]!r} in label "
                    f"column {c!r}, data row {row + 1} (line {row + 2} counting the header). "
                    f"Labels must be numbers; fix or remove those rows, or drop {c!r} from "
                    f"data.label_columns."
                )
            labels[c] = numeric.astype("float64")
        labels = labels.reset_index(drop=True)
    return sequences, labels


def read_sequences(
    path: str | Path,
    *,
    sequence_column: str = "sequence",
    label_columns: Sequence[str] | None = None,
    known_letters: frozenset[str] | None = None,
) -> tuple[list[str], pd.DataFrame | None]:
    """Read sequences (upper-cased) and, for a table with ``label_columns``, the labels. With
    ``known_letters`` (the domain's ``known_letters()``), a sequence holding any other letter is an error.

    FASTA (.fa/.fasta/.fna, optionally .gz) is read with Biopython; CSV/TSV (optionally
    .gz) with pandas, taking ``sequence_column`` and the optional ``label_columns`` (returned
    as a float DataFrame with one row per sequence, NaN where a label is missing)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist{' (it is a folder)' if path.is_dir() else ''}. "
            f"Check data.path; the embedded default data sets are fetched with `make setup`."
        )
    kind = _format_of(path)
    if path.stat().st_size == 0:
        raise DataError(
            f"data file {path} is empty (0 bytes). Re-fetch or regenerate it (the embedded "
            f"default comes from `make setup`) or point data.path at another file."
        )
    if kind == "fasta":
        if label_columns:
            raise DataError(
                f"data file {path} is FASTA, which has no label columns, but data.label_columns"
                f"={list(label_columns)} was given. Use a CSV/TSV table with those columns, or "
                f"set data.label_columns=null."
            )
        return _read_fasta(path, known_letters), None
    return _read_table(path, sequence_column, label_columns, known_letters)


# --------------------------------------------------------------------------------------- #
# Windowing / filtering
# --------------------------------------------------------------------------------------- #


def check_letters(sequences: Sequence[str], path: Path, *, what: str, known: frozenset[str] | None,
                  names: Sequence[str] | None = None) -> None:
    """Refuse sequences holding letters the domain does not know (``known``; None: no check), naming the
    first one."""
    if known is None:
        return
    for i, seq in enumerate(sequences):
        bad = set(seq) - known
        if bad:
            label = f"{what} {i + 1}" + (f" ({names[i]})" if names and names[i] else "")
            shown = "".join(sorted(bad))[:10]
            raise DataError(
                f"data file {path}, {label}: letters this domain does not know ({shown!r}); allowed are "
                f"{''.join(sorted(known))}. Is it another kind of sequence (protein, nucleotides) or a corrupt "
                f"file? Fix or remove that sequence, or use the domain of that alphabet.")


def _windows_with_source(
    sequences: Sequence[str], *, seq_len: int, stride: int | None, domain: SequenceDomain
) -> tuple[list[str], list[int], dict[str, int]]:
    if seq_len <= 0:
        raise ConfigError(f"data.seq_len must be a positive integer, got {seq_len}.")
    stride = seq_len if stride is None else stride
    if stride <= 0:
        raise ConfigError(f"data.stride must be a positive integer or null, got {stride}.")
    strip = str.maketrans("", "", domain.alphabet)
    kept: list[str] = []
    source: list[int] = []
    n_windows = dropped_n = dropped_other = too_short = 0
    for i, seq in enumerate(sequences):
        seq = domain.clean(seq)
        if len(seq) < seq_len:
            too_short += 1
            continue
        for start in range(0, len(seq) - seq_len + 1, stride):
            w = seq[start : start + seq_len]
            n_windows += 1
            rest = w.translate(strip)
            if not rest:
                kept.append(w)
                source.append(i)
            elif "N" in rest:
                dropped_n += 1
            else:
                dropped_other += 1
    stats = {
        "sequences": len(sequences),
        "windows": n_windows,
        "kept": len(kept),
        "dropped_n": dropped_n,
        "dropped_other": dropped_other,
        "too_short": too_short,
    }
    return kept, source, stats


def windows(
    sequences: Sequence[str], *, seq_len: int, stride: int | None = None, domain: SequenceDomain
) -> tuple[list[str], dict[str, int]]:
    """Cut each sequence into windows of ``seq_len`` every ``stride`` letters (default
    ``seq_len``: non-overlapping; a tail shorter than ``seq_len`` is discarded).

    Windows holding N, or any other letter outside the domain's alphabet, are dropped; letters are
    first normalised by the domain (``domain.clean``: upper case; T read as U for RNA). Returns the kept windows and stats:
    ``sequences`` (inputs), ``windows`` (candidate windows), ``kept``, ``dropped_n``
    (windows with at least one N), ``dropped_other`` (other foreign letters, no N) and
    ``too_short`` (sequences shorter than ``seq_len``, which yield no window)."""
    kept, _source, stats = _windows_with_source(
        sequences, seq_len=seq_len, stride=stride, domain=domain
    )
    return kept, stats


def exact_rows(
    sequences: Sequence[str],
    labels: pd.DataFrame | None,
    *,
    seq_len: int,
    domain: SequenceDomain,
    source: str | Path = "the data file",
) -> tuple[list[str], np.ndarray | None, list[int], dict[str, int]]:
    """Labelled tables: every sequence must already have length ``seq_len`` (no windowing;
    a wrong length raises DataError naming the row). Rows with N, with other letters outside
    the domain's alphabet or with a missing label are dropped and counted.

    Returns the kept sequences, their labels (float32 array (N, K) or None), the kept row
    indices and stats (same keys as :func:`windows`, plus ``dropped_missing_label``)."""
    if seq_len <= 0:
        raise ConfigError(f"data.seq_len must be a positive integer, got {seq_len}.")
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    wrong = lengths != seq_len
    if wrong.any():
        row = int(np.argmax(wrong))
        distinct = np.unique(lengths)
        if len(distinct) == 1:
            fix = f"set data.seq_len={int(distinct[0])} (all rows have that length)"
        else:
            fix = (
                f"lengths range from {int(lengths.min())} to {int(lengths.max())}; trim or pad "
                f"the sequences to one length, or drop the label columns to cut unlabelled "
                f"windows instead"
            )
        raise DataError(
            f"data file {source}: data row {row + 1} (line {row + 2} counting the header) has "
            f"a sequence of length {int(lengths[row])}, but labelled tables are not windowed "
            f"and must hold sequences of exactly data.seq_len={seq_len} "
            f"({int(wrong.sum())} of {len(sequences)} rows differ). To fix it, {fix}."
        )
    strip = str.maketrans("", "", domain.alphabet)
    label_ok = (
        np.ones(len(sequences), dtype=bool)
        if labels is None
        else labels.notna().all(axis=1).to_numpy()
    )
    kept: list[str] = []
    rows: list[int] = []
    dropped_n = dropped_other = dropped_label = 0
    for i, seq in enumerate(sequences):
        seq = domain.clean(seq)
        rest = seq.translate(strip)
        if rest:
            if "N" in rest:
                dropped_n += 1
            else:
                dropped_other += 1
        elif not label_ok[i]:
            dropped_label += 1
        else:
            kept.append(seq)
            rows.append(i)
    values = None
    if labels is not None:
        values = labels.to_numpy(dtype=np.float32)[rows] if rows else np.zeros(
            (0, labels.shape[1]), dtype=np.float32
        )
    stats = {
        "sequences": len(sequences),
        "windows": len(sequences),
        "kept": len(kept),
        "dropped_n": dropped_n,
        "dropped_other": dropped_other,
        "too_short": 0,
        "dropped_missing_label": dropped_label,
    }
    return kept, values, rows, stats


# --------------------------------------------------------------------------------------- #
# DataModule
# --------------------------------------------------------------------------------------- #


class _TokenDataset(Dataset):
    def __init__(self, tokens: Tensor, labels: Tensor | None) -> None:
        self.tokens = tokens
        self.labels = labels

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        item = {"tokens": self.tokens[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


class SequenceDataModule(L.LightningDataModule):
    """Fixed-length sequences of a sequence domain (DNA and RNA by default) read from a FASTA/CSV/TSV file.

    After :meth:`setup`: ``stats`` (read/window counts), ``train_tokens``/``val_tokens``
    (long (N, L)), ``train_labels``/``val_labels`` (float (N, K) or None), ``label_names``
    and ``data_path`` (the resolved file). Batches are ``{"tokens": (B, L) long}`` plus
    ``{"labels": (B, K) float}`` when ``label_columns`` is given.

    Train and validation are split by *source sequence* (all windows of one FASTA record go to
    the same side), so overlapping or neighbouring windows do not leak into validation."""

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
        super().__init__()
        if domain is None:
            if not alphabet:
                raise ConfigError("the data needs a domain (data.domain) or an alphabet; give its letters, e.g. 'ACGT'.")
            domain = NucleotideDomain(alphabet=alphabet)  # the shorthand of the DNA/RNA DataModules
        if path is None and default_path is None:
            raise ConfigError(
                "no data file: set data.path=YOUR.fasta (or .csv/.tsv, optionally .gz)."
            )
        for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
            if int(value) <= 0:
                raise ConfigError(f"data.{name} must be a positive integer, got {value}.")
        for name, value in (("max_windows", max_windows), ("stride", stride)):
            if value is not None and int(value) <= 0:
                raise ConfigError(f"data.{name} must be a positive integer or null, got {value}.")
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(
                f"data.val_fraction must be in [0, 1) (e.g. 0.05), got {val_fraction}."
            )
        if int(num_workers) < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}.")
        self.domain = domain
        self.alphabet = domain.alphabet
        self.path = None if path is None else str(path)
        self.default_path = None if default_path is None else str(default_path)
        self.seq_len = int(seq_len)
        self.batch_size = int(batch_size)
        self.val_fraction = float(val_fraction)
        self.max_windows = None if max_windows is None else int(max_windows)
        self.stride = None if stride is None else int(stride)
        self.sequence_column = sequence_column
        self.label_columns = list(label_columns) if label_columns else None
        self.num_workers = int(num_workers)
        self.seed = int(seed)

        self.stats: dict[str, Any] | None = None
        self._split_by = "none"
        self.data_path: Path | None = None
        self.label_names: list[str] | None = self.label_columns
        self.train_tokens: Tensor | None = None
        self.val_tokens: Tensor | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    # -- file ---------------------------------------------------------------------------- #

    def _locate(self) -> Path:
        given = self.path if self.path is not None else self.default_path
        assert given is not None
        resolved = resolve_path(given)
        if resolved.is_file():
            return resolved
        p = Path(given).expanduser()
        places = [p] if p.is_absolute() else [Path.cwd() / p, REPO_ROOT / p]
        tried = " and ".join(dict.fromkeys(str(x) for x in places))
        if self.path is None:
            raise DataError(
                f"the default data file {given} is missing (looked at {tried}). Run `make setup`"
                f" in {REPO_ROOT} to fetch the embedded data, or point data.path at your own "
                f"FASTA/CSV/TSV file."
            )
        raise DataError(
            f"data file {given} does not exist (looked at {tried}). Check data.path (a "
            f"relative path is tried in the working directory, then in the repository root)."
        )

    # -- setup --------------------------------------------------------------------------- #

    def setup(self, stage: str | None = None) -> None:
        if self.train_tokens is not None:
            return
        path = self._locate()
        sequences, labels = read_sequences(
            path, sequence_column=self.sequence_column, label_columns=self.label_columns,
            known_letters=self.domain.known_letters(),
        )
        if labels is not None:
            kept, values, groups, stats = exact_rows(
                sequences, labels, seq_len=self.seq_len, domain=self.domain, source=path
            )
        else:
            kept, groups, stats = _windows_with_source(
                sequences, seq_len=self.seq_len, stride=self.stride, domain=self.domain
            )
            values = None
        del sequences
        if not kept:
            raise DataError(
                f"data file {path} yields no usable sequence of length {self.seq_len} over "
                f"{self.alphabet}: {_describe(stats, self.seq_len)}. Lower data.seq_len, check "
                f"that the file holds {self.alphabet} sequences, or use another file."
            )

        gen = torch.Generator().manual_seed(self.seed)
        index = np.arange(len(kept))
        if self.max_windows is not None and len(kept) > self.max_windows:
            pick = torch.randperm(len(kept), generator=gen)[: self.max_windows]
            index = np.sort(pick.numpy())
        stats["used"] = len(index)

        groups_arr = np.asarray(groups, dtype=np.int64)[index]
        is_val = self._split(groups_arr, gen)
        if not (~is_val).any():
            raise DataError(
                f"data file {path} leaves no training data after holding out "
                f"data.val_fraction={self.val_fraction} of {len(index)} sequences. Lower "
                f"data.val_fraction or provide more data."
            )
        train_idx = index[~is_val]
        val_idx = index[is_val]
        try:
            self.train_tokens = _encode_rows(kept, train_idx, self.seq_len, self.domain)
            self.val_tokens = _encode_rows(kept, val_idx, self.seq_len, self.domain)
        except AlphabetError as exc:  # pragma: no cover - filtered above
            raise DataError(f"data file {path}: {exc}. Fix or remove that sequence.") from exc
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
            _describe(stats, self.seq_len),
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

    # -- loaders ------------------------------------------------------------------------- #

    def _loader(self, tokens: Tensor | None, labels: Tensor | None, train: bool) -> DataLoader:
        if tokens is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            _TokenDataset(tokens, labels),
            batch_size=self.batch_size,
            shuffle=train,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_tokens, self.train_labels, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_tokens, self.val_labels, train=False)


def _encode_rows(
    kept: Sequence[str], rows: np.ndarray, seq_len: int, domain: SequenceDomain, chunk: int = 8192
) -> Tensor:
    """Encode ``kept[rows]`` (all of length seq_len) into a long tensor (len(rows), seq_len).

    Chunks of windows are joined into one string per call to ``encode`` and
    reshaped, which is ~10x faster than one call per window and keeps peak memory near the
    size of the result."""
    out = torch.empty((len(rows), seq_len), dtype=torch.long)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        joined = "".join(kept[i] for i in part)
        out[start : start + len(part)] = encode([joined], domain.alphabet).view(
            len(part), seq_len
        )
    return out


def _describe(stats: dict[str, Any], seq_len: int) -> str:
    parts = [
        f"{stats['sequences']} sequences -> {stats['windows']} candidate windows of {seq_len}",
        f"kept {stats['kept']}",
        f"dropped {stats['dropped_n']} with N",
        f"{stats['dropped_other']} with other letters",
    ]
    if stats.get("dropped_missing_label"):
        parts.append(f"{stats['dropped_missing_label']} with a missing label")
    parts.append(f"{stats['too_short']} sequences shorter than {seq_len}")
    return ", ".join(parts)
