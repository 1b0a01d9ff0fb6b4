"""RNA rewards.

``mfe``: stability = -MFE, the negated minimum free energy (kcal/mol) of the sequence's
secondary structure from ViennaRNA (Turner 2004 parameters, 37 degC by default). An unfolded
chain has free energy 0, so the reward is >= 0 and grows with the stability of the fold (the
RNA stability task of the reference SVDD code). Not differentiable: folding is a dynamic
programme run per sequence on the CPU; about 0.6 s per 1,000 sequences of 50 nt. A reward over
objects: it scores ACGU strings (rewards/objects.py).

Invalid input scores :data:`INVALID_STABILITY` (0.0, "no structure", the lowest a real
sequence can score): a sequence that still holds a mask token. Never NaN.

``gc`` for RNA is :class:`svdd_lightning.rewards.dna.GCReward` (ids 0..3 are ACGU here).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import RNA

from svdd_lightning.rewards.objects import ObjectReward, score_each

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


class MFEReward(ObjectReward):
    """Stability -MFE (kcal/mol) of ACGU sequences (rewards over objects: the RNA domain turns token rows
    into strings, a row with a leftover mask into None, which scores INVALID_STABILITY)."""

    name: ClassVar[str] = "mfe"
    units: ClassVar[str] = "-MFE, kcal/mol"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, *, temperature: float = 37.0, workers: int | None = None, cache: bool = True) -> None:
        """``workers``: processes folding in parallel (null = all available cores, 0 = in this
        process); ``cache``: fold each distinct sequence once per run (see rewards/objects.py)."""
        temperature = float(temperature)
        if not -273.15 < temperature < 200.0:
            raise ValueError(f"reward.temperature={temperature} is not a plausible temperature in degC (e.g. 37.0)")
        self.temperature = temperature
        super().__init__(fn=functools.partial(score_each, functools.partial(fold_stability, temperature)),
                         floor=INVALID_STABILITY, workers=workers, cache=cache)
