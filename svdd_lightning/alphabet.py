"""Nucleotide alphabets: text <-> token ids. Token V (= len(alphabet)) is the mask token."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

DNA = "ACGT"
RNA = "ACGU"


class AlphabetError(ValueError):
    """A sequence holds letters outside its alphabet."""


def encode(sequences: Iterable[str], alphabet: str) -> Tensor:
    """Equal-length sequences -> long tokens (N, L). Case-insensitive; raises AlphabetError
    naming the first offending sequence and letter."""
    lut = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(alphabet):
        lut[ord(ch)] = i
        lut[ord(ch.lower())] = i
    rows = []
    for n, seq in enumerate(sequences):
        codes = lut[np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)]
        if (codes < 0).any():
            bad = seq[int(np.argmax(codes < 0))]
            raise AlphabetError(f"sequence {n} has letter {bad!r} outside the alphabet {alphabet}")
        rows.append(codes)
    if not rows:
        return torch.empty((0, 0), dtype=torch.long)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise AlphabetError(f"sequences must share one length, found lengths {sorted(lengths)[:5]}")
    return torch.from_numpy(np.stack(rows))


def decode(tokens: Tensor, alphabet: str) -> list[str]:
    """Long tokens (N, L) -> strings; a leftover mask token prints as 'N'."""
    table = np.array(list(alphabet) + ["N"])
    arr = tokens.detach().cpu().numpy()
    return ["".join(row) for row in table[arr]]
