"""Sequences -> fixed-length rows: windows cut from raw sequences (FASTA), or labelled table rows that already have
the length. Letters are normalised by the domain (``domain.clean``); rows with N or other letters outside the
alphabet are dropped and counted, so the log says what a file gave. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from svdd_lightning.domains.sequences import SequenceDomain, encode
from svdd_lightning.errors import ConfigError, data_error


def windows_with_source(
    sequences: Sequence[str], *, seq_len: int, stride: int | None, domain: SequenceDomain
) -> tuple[list[str], list[int], dict[str, int]]:
    """:func:`windows`, plus the index of the sequence each window was cut from (the split keeps a source's windows
    on one side)."""
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
    kept, _source, stats = windows_with_source(
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
        raise data_error(source, f": data row {row + 1} (line {row + 2} counting the header) has a sequence of "
                                 f"length {int(lengths[row])}, but labelled tables are not windowed and must hold "
                                 f"sequences of exactly data.seq_len={seq_len} ({int(wrong.sum())} of "
                                 f"{len(sequences)} rows differ).", f"To fix it, {fix}.")
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


def encode_rows(
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


def describe_windows(stats: dict[str, Any], seq_len: int) -> str:
    """The stats of :func:`windows` / :func:`exact_rows` as the log and the errors say them."""
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
