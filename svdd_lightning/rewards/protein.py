"""Developability proxies of protein sequences from Biopython's ``ProteinAnalysis`` (rewards over ``str``).

- ``hydrophobicity``: -GRAVY (Kyte-Doolittle grand average of hydropathy; higher = less hydrophobic, less
  prone to aggregation);
- ``instability``: -(instability index) (Guruprasad et al. 1990; an index above 40 predicts an unstable
  protein; higher reward = more stable);
- ``net_charge``: the net charge at pH 7.4 (Biopython's ``charge_at_pH``; elementary charges). Its sign is the
  user's choice of direction: ``reward.sign=-1`` rewards negative charge.

Each is a pure function of the sequence, memoised and pooled by the framework (rewards/objects.py).
"""

from __future__ import annotations

import functools
from typing import ClassVar

from svdd_lightning.rewards.objects import ObjectReward, score_each


def negative_gravy(sequence: str) -> float:
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    return -ProteinAnalysis(sequence).gravy()


def negative_instability(sequence: str) -> float:
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    return -ProteinAnalysis(sequence).instability_index()


def net_charge(sequence: str, ph: float = 7.4, sign: float = 1.0) -> float:
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    return sign * ProteinAnalysis(sequence).charge_at_pH(ph)


class HydrophobicityReward(ObjectReward):
    name: ClassVar[str] = "hydrophobicity"
    units: ClassVar[str] = "-GRAVY"

    def __init__(self, *, workers: int | None = 0, cache: bool = True) -> None:
        super().__init__(fn=functools.partial(score_each, negative_gravy), floor=None, workers=workers, cache=cache)


class InstabilityReward(ObjectReward):
    name: ClassVar[str] = "instability"
    units: ClassVar[str] = "-instability index"

    def __init__(self, *, workers: int | None = 0, cache: bool = True) -> None:
        super().__init__(fn=functools.partial(score_each, negative_instability), floor=None, workers=workers,
                         cache=cache)


class NetChargeReward(ObjectReward):
    name: ClassVar[str] = "net_charge"
    units: ClassVar[str] = "e at pH 7.4"

    def __init__(self, *, ph: float = 7.4, sign: float = 1.0, workers: int | None = 0, cache: bool = True) -> None:
        if sign not in (1, -1, 1.0, -1.0):
            raise ValueError(f"sign must be 1 (reward positive charge) or -1 (negative charge), got {sign}")
        super().__init__(fn=functools.partial(score_each, functools.partial(net_charge, ph=float(ph), sign=float(sign))),
                         floor=None, workers=workers, cache=cache)
