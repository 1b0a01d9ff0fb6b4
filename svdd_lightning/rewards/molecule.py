"""Molecule rewards from RDKit, on SELFIES token rows.

Each reward decodes token ids (B, L) -> SELFIES (with the vocabulary) -> SMILES -> RDKit
molecule and scores it:

- ``qed``: ``Chem.QED.qed`` drug-likeness in [0, 1] (about 0.9 ms per molecule, the slow one).
- ``sa``: synthetic accessibility from RDKit's Contrib ``sascorer`` (Ertl & Schuffenhauer, SA in
  [1, 10], lower is easier), normalised as in the paper to (10 - SA) / 9 in [0, 1], higher is
  better.
- ``logp``: Crippen logP (``Crippen.MolLogP``), unbounded; higher is "better" only as a task.

Invalid objects (a row that still holds a mask token, decodes to an empty molecule, or that
RDKit rejects) score a documented floor, never NaN: 0.0 for qed and sa (their minimum), and
``LOGP_FLOOR`` = -20.0 for logp (far below what molecules of this size reach: MOSES
molecules span about -2.3 .. 5.0, uniformly random token rows about -2.2 .. 5.2).

The rewards are not differentiable and run under ``torch.no_grad``; results are returned as
float32 on x0's device. Scores are memoised per token row (a bounded dict), since SVDD scores
many repeated posterior-mean estimates.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import ClassVar

import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen, RDConfig
from torch import Tensor

from svdd_lightning.chem import SelfiesVocabulary, to_mol
from svdd_lightning.rewards.base import Reward

LOGP_FLOOR = -20.0
_CACHE_SIZE = 200_000


def _sascorer():
    """RDKit's Contrib SA_Score module (not a package: imported from RDContribDir)."""
    directory = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if directory not in sys.path:
        sys.path.append(directory)
    import sascorer  # noqa: PLC0415

    return sascorer


class MoleculeReward(Reward):
    """Base class: decode token rows to molecules and score each valid one with :meth:`score`."""

    name: ClassVar[str] = "molecule"
    floor: ClassVar[float] = 0.0

    def __init__(self, *, vocab: str | Path | None = None) -> None:
        super().__init__()
        self.vocab = SelfiesVocabulary.load(vocab)
        self._cache: dict[bytes, float] = {}

    def score(self, mol: Chem.Mol) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_smiles(self, smiles: str | None) -> float:
        mol = to_mol(smiles)
        if mol is None:
            return self.floor
        try:
            value = float(self.score(mol))
        except Exception:  # RDKit raises on a few odd valence/aromaticity states: count as invalid
            return self.floor
        return value if math.isfinite(value) else self.floor

    @torch.no_grad()
    def forward(self, x0: Tensor) -> Tensor:
        tokens = x0.argmax(dim=-1) if x0.dtype.is_floating_point else x0
        if tokens.dim() != 2:
            raise ValueError(f"{type(self).__name__} expects token ids (B, L), got shape {tuple(x0.shape)}")
        cpu = tokens.detach().to("cpu", torch.int64)
        out = []
        for row in cpu:
            key = row.numpy().tobytes()
            value = self._cache.get(key)
            if value is None:
                value = self.score_smiles(self.vocab.decode_row(row))
                if len(self._cache) >= _CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = value
            out.append(value)
        return torch.tensor(out, dtype=torch.float32, device=x0.device)


class QEDReward(MoleculeReward):
    """QED drug-likeness in [0, 1]; invalid molecules score 0."""

    name: ClassVar[str] = "qed"
    units: ClassVar[str] = "QED, 0-1"
    floor: ClassVar[float] = 0.0

    def score(self, mol: Chem.Mol) -> float:
        return QED.qed(mol)


class SAReward(MoleculeReward):
    """(10 - SA) / 9 in [0, 1] (1 = easiest to synthesise); invalid molecules score 0."""

    name: ClassVar[str] = "sa"
    units: ClassVar[str] = "(10 - SA) / 9"
    floor: ClassVar[float] = 0.0

    def __init__(self, *, vocab: str | Path | None = None) -> None:
        super().__init__(vocab=vocab)
        self._sascorer = _sascorer()

    def score(self, mol: Chem.Mol) -> float:
        return (10.0 - self._sascorer.calculateScore(mol)) / 9.0


class LogPReward(MoleculeReward):
    """Crippen logP; invalid molecules score ``LOGP_FLOOR`` (-20)."""

    name: ClassVar[str] = "logp"
    units: ClassVar[str] = "Crippen logP"
    floor: ClassVar[float] = LOGP_FLOOR

    def score(self, mol: Chem.Mol) -> float:
        return Crippen.MolLogP(mol)
