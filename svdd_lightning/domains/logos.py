"""Sequence logos of decoded samples, drawn with logomaker (Tareen & Kinney 2020).

A logo shows, at each position, the information content of the samples' letters in bits (log2 of the
alphabet size minus the entropy of the letter frequencies, against a uniform background), split among the
letters in proportion to their frequency: tall stacks are positions the samples agree on. Frequencies are the
plain counts (no pseudocount), so a position where every sample has one letter reaches log2(alphabet size).

For an inpainting decode only the redesigned positions are drawn, at their real 1-based indices, and each
position counts only the samples that were free to change it (a seed's kept letters would read as agreement).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from svdd_lightning.atomic import atomic_path


def logo_matrix(sequences: Sequence[str], positions: Sequence[int] | None = None, *, alphabet: str,
                counted: np.ndarray | None = None) -> pd.DataFrame:
    """Information (bits) per position and letter of equal-length ``sequences``.

    Args:
        sequences: the samples, letters of ``alphabet`` (other letters, e.g. a leftover mask, are not counted).
        positions: the 1-based positions to cover, ascending; None: all.
        alphabet: the letters (the matrix's columns, in this order).
        counted: (N, L) bool, which sample counts at which position (an inpainting decode's redesigned
            positions of each sample); None: every sample everywhere.

    Returns:
        A DataFrame indexed by 1-based position (named ``pos``), one column per letter, whose row sums are the
        positions' information content.
    """
    length = len(sequences[0]) if sequences else 0
    positions = list(range(1, length + 1)) if positions is None else [int(p) for p in positions]
    if any(p < 1 or p > length for p in positions) or positions != sorted(set(positions)):
        raise ValueError(f"positions must be distinct, ascending and within 1..{length}, got {positions[:10]}")
    lut = np.full(256, -1, dtype=np.int64)
    for k, ch in enumerate(alphabet):
        lut[ord(ch)] = k
    codes = np.stack([lut[np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)] for s in sequences])
    columns = np.asarray(positions) - 1
    codes = codes[:, columns]
    keep = codes >= 0 if counted is None else (codes >= 0) & np.asarray(counted, dtype=bool)[:, columns]
    counts = np.stack([((codes == k) & keep).sum(axis=0) for k in range(len(alphabet))], axis=1)
    empty = counts.sum(axis=1) == 0
    if empty.any():
        raise ValueError(f"no sample counts at positions {[positions[i] for i in np.flatnonzero(empty)][:10]}")
    import logomaker

    frame = pd.DataFrame(counts.astype(float), index=pd.Index(positions, name="pos"), columns=list(alphabet))
    return logomaker.transform_matrix(frame, from_type="counts", to_type="information", pseudocount=0)


def region_label(positions: Sequence[int]) -> str:
    """1-based positions as ranges: [5, 10, 11, 12] -> '5,10-12'."""
    parts, run = [], []
    for p in positions:
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [p]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def logo_height(tallest: float, full: float) -> float:
    """The y limit of a logo: the full log2(alphabet size) when some stack reaches half of it, else the tallest
    stack plus a margin (rounded up to a tenth of a bit), so that the letters of weakly conserved samples stay
    readable; the title says so."""
    if tallest >= 0.5 * full:
        return full
    return max(0.1, float(np.ceil(tallest * 1.15 * 10) / 10))


def plot_logo(path: Path, matrix: pd.DataFrame, *, title: str, color_scheme: str | None = None,
              per_row: int = 50, dpi: int = 110) -> Path:
    """Draw ``matrix`` (from :func:`logo_matrix`) as a logo, ``per_row`` positions per row (rows stacked, each
    spanning the same width so letters keep one size, one y scale for all: :func:`logo_height`), x ticks at the
    real 1-based positions."""
    import matplotlib

    matplotlib.use("Agg")
    import logomaker
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, MultipleLocator

    positions = matrix.index.to_numpy()
    first = int(positions[0])
    rows = [r for r in range((int(positions[-1]) - first) // per_row + 1)
            if ((positions >= first + r * per_row) & (positions < first + (r + 1) * per_row)).any()]
    span = min(per_row, int(positions[-1]) - first + 1)
    width = min(15.0, max(6.0, 0.27 * span + 1.6))
    full = float(np.log2(matrix.shape[1]))
    ymax = logo_height(float(matrix.to_numpy().sum(axis=1).max()), full)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 1.9 * len(rows) + 0.7), dpi=dpi, squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        lo = first + r * per_row
        part = matrix[(positions >= lo) & (positions < lo + per_row)]
        logomaker.Logo(part, ax=ax, color_scheme=color_scheme, vpad=0.05, width=0.9)
        ax.set_xlim(lo - 0.5, lo + span - 0.5)
        ax.set_ylim(0, ymax)
        ax.set_ylabel("bits")
        if ymax < full:
            ax.yaxis.set_major_locator(MaxNLocator(4))
        step = 1 if span <= 20 else 5
        ax.set_xticks([t for t in range(lo, lo + span) if t % step == 0 or t == lo])
        ax.xaxis.set_minor_locator(MultipleLocator(1))
        ax.tick_params(axis="x", labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[-1, 0].set_xlabel("position (1-based)")
    if ymax < full:
        title += f"; y axis up to {ymax:.2g} bits (a fully conserved position has {full:.3g})"
    fig.suptitle("\n".join(textwrap.wrap(title, width=int(width * 11))), fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
