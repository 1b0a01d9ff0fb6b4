"""Molecule rewards from RDKit, over SMILES (rewards over objects: the molecule domain turns token rows
into SMILES, see rewards/objects.py). Each parses the SMILES into an RDKit molecule and scores it:

- ``qed``: ``Chem.QED.qed`` drug-likeness in [0, 1] (about 0.9 ms per molecule, the slow one).
- ``sa``: synthetic accessibility from RDKit's Contrib ``sascorer`` (Ertl & Schuffenhauer, SA in
  [1, 10], lower is easier), normalised as in the paper to (10 - SA) / 9 in [0, 1], higher is
  better.
- ``logp``: Crippen logP (``Crippen.MolLogP``), unbounded; higher is "better" only as a task.

Invalid objects (a row that still holds a mask token or decodes to an empty molecule, which the
domain reports as None, or a SMILES that RDKit rejects) score a documented floor, never NaN: 0.0 for qed and sa (their minimum), and
``LOGP_FLOOR`` = -20.0 for logp (far below what molecules of this size reach: MOSES
molecules span about -2.3 .. 5.0, uniformly random token rows about -2.2 .. 5.2).

The rewards are not differentiable. Scores are memoised per SMILES, since SVDD scores many repeated
posterior-mean estimates, and misses run in a process pool (``rewards/pool.py``).
"""

from __future__ import annotations

import functools
import math
import os
import sys
from typing import ClassVar

from rdkit import Chem
from rdkit.Chem import QED, Crippen, RDConfig

from svdd_lightning.domains.molecules.chem import to_mol
from svdd_lightning.rewards.objects import ObjectReward, score_each

LOGP_FLOOR = -20.0


@functools.cache
def _sascorer():
    """RDKit's Contrib SA_Score module (not a package: imported from RDContribDir)."""
    directory = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if directory not in sys.path:
        sys.path.append(directory)
    import sascorer  # noqa: PLC0415

    return sascorer


def _score_qed(mol: Chem.Mol) -> float:
    return QED.qed(mol)


def _score_sa(mol: Chem.Mol) -> float:
    return (10.0 - _sascorer().calculateScore(mol)) / 9.0


def _score_logp(mol: Chem.Mol) -> float:
    return Crippen.MolLogP(mol)


SCORES = {"qed": _score_qed, "sa": _score_sa, "logp": _score_logp}


def score_smiles(name: str, floor: float, smiles: str | None) -> float:
    """The ``name`` score of one SMILES (a top-level function, so a process pool can run it);
    ``floor`` for an invalid molecule, never NaN."""
    score = SCORES[name]
    mol = to_mol(smiles)
    if mol is None:
        return floor
    try:
        value = float(score(mol))
    except Exception:  # RDKit raises on a few odd valence/aromaticity states: count as invalid
        return floor
    return value if math.isfinite(value) else floor


class MoleculeReward(ObjectReward):
    """Base class: scores SMILES (the molecule domain's objects). Scores are memoised per SMILES and misses
    run in a process pool (``workers``: null = all available cores, 0 = in this process); see
    ``rewards/objects.py``."""

    name: ClassVar[str] = "molecule"
    floor: ClassVar[float] = 0.0

    def __init__(self, *, workers: int | None = None, cache: bool = True) -> None:
        super().__init__(fn=functools.partial(score_each, functools.partial(score_smiles, self.name, self.floor)),
                         floor=self.floor, workers=workers, cache=cache)


class QEDReward(MoleculeReward):
    """QED drug-likeness in [0, 1]; invalid molecules score 0."""

    name: ClassVar[str] = "qed"
    units: ClassVar[str] = "QED, 0-1"
    floor: ClassVar[float] = 0.0


class SAReward(MoleculeReward):
    """(10 - SA) / 9 in [0, 1] (1 = easiest to synthesise); invalid molecules score 0."""

    name: ClassVar[str] = "sa"
    units: ClassVar[str] = "(10 - SA) / 9"
    floor: ClassVar[float] = 0.0

    def __init__(self, *, workers: int | None = None, cache: bool = True) -> None:
        _sascorer()  # fail early (here, not in a worker) if RDKit's Contrib SA_Score is missing
        super().__init__(workers=workers, cache=cache)


class LogPReward(MoleculeReward):
    """Crippen logP; invalid molecules score ``LOGP_FLOOR`` (-20)."""

    name: ClassVar[str] = "logp"
    units: ClassVar[str] = "Crippen logP"
    floor: ClassVar[float] = LOGP_FLOOR

