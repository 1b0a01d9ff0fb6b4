"""RNA rewards.

``mfe``: stability = -MFE, the negated minimum free energy (kcal/mol) of the sequence's
secondary structure from ViennaRNA (Turner 2004 parameters, 37 degC by default). An unfolded
chain has free energy 0, so the reward is >= 0 and grows with the stability of the fold (the
RNA stability task of the reference SVDD code). Not differentiable: folding is a dynamic
programme run per sequence on the CPU, under ``torch.no_grad``; about 0.6 s per 1,000
sequences of 50 nt.

Invalid input scores :data:`INVALID_STABILITY` (0.0, "no structure", the lowest a real
sequence can score): a sequence that still holds a mask token (id 4 for ACGU) or any id
outside 0..3. Never NaN.

``gc`` for RNA is :class:`svdd_lightning.rewards.dna.GCReward` (ids 0..3 are ACGU here).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import RNA
import torch
from torch import Tensor

from svdd_lightning.alphabet import RNA as RNA_ALPHABET
from svdd_lightning.rewards.base import Reward
from svdd_lightning.rewards.pool import PooledScorer

INVALID_STABILITY = 0.0


def fold_stability(temperature: float, sequence: str | None) -> float:
    """-MFE (kcal/mol) of one ACGU sequence at ``temperature`` degC; INVALID_STABILITY for None.
    A top-level function so a process pool can run it; the settings are explicit, so ViennaRNA's
    global defaults cannot change the reward."""
    if not sequence:
        return INVALID_STABILITY
    md = RNA.md()
    md.temperature = temperature
    # 0.0 - mfe: an unfolded sequence scores 0.0, not -0.0.
    return 0.0 - float(RNA.fold_compound(sequence, md).mfe()[1])


class MFEReward(Reward):
    """Stability -MFE (kcal/mol) of token sequences ``(B, L)`` over ACGU (ids 0..3).

    Float inputs ``(B, L, 4)`` (one-hot or per-position probabilities) are read by their
    argmax. Returns float32 ``(B,)`` on x0's device."""

    name: ClassVar[str] = "mfe"
    units: ClassVar[str] = "-MFE, kcal/mol"
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False

    def __init__(self, *, temperature: float = 37.0, workers: int | None = None, cache: bool = True) -> None:
        """``workers``: processes folding in parallel (null = all available cores, 0 = in this
        process); ``cache``: fold each distinct sequence once per run (see rewards/pool.py)."""
        super().__init__()
        temperature = float(temperature)
        if not -273.15 < temperature < 200.0:
            raise ValueError(f"reward.temperature={temperature} is not a plausible temperature in degC (e.g. 37.0)")
        self.temperature = temperature
        self.scorer = PooledScorer(functools.partial(fold_stability, temperature), workers=workers, cache=cache)

    def cache_stats(self) -> dict[str, float]:
        return {**self.scorer.stats.as_dict(), "workers": self.scorer.workers}

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"

    def sequences(self, x0: Tensor) -> list[str | None]:
        """Token rows -> ACGU strings; None for a row with a mask token or an invalid id."""
        if x0.dtype.is_floating_point:
            if x0.dim() != 3 or x0.shape[-1] != len(RNA_ALPHABET):
                raise ValueError(
                    f"MFEReward takes long tokens (B, L) or float (B, L, 4) one-hots, got {x0.dtype} "
                    f"{tuple(x0.shape)}"
                )
            x0 = x0.argmax(dim=-1)
        if x0.dim() != 2:
            raise ValueError(f"MFEReward takes tokens of shape (B, L), got {tuple(x0.shape)}")
        tokens = x0.detach().cpu().numpy()
        valid = ((tokens >= 0) & (tokens < len(RNA_ALPHABET))).all(axis=1)
        letters = np.frombuffer(RNA_ALPHABET.encode(), dtype=np.uint8)
        out: list[str | None] = []
        for row, ok in zip(tokens, valid):
            out.append(letters[row].tobytes().decode() if ok else None)
        return out

    @torch.no_grad()
    def forward(self, x0: Tensor) -> Tensor:
        sequences = self.sequences(x0)
        return torch.tensor(self.scorer(sequences, sequences), dtype=torch.float32, device=x0.device)
