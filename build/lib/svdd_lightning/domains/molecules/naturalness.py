"""Naturalness of molecule samples (SELFIES token rows), as in the generative-chemistry
benchmarks (MOSES / GuacaMol):

- ``validity``: fraction of samples that decode to a non-empty molecule RDKit accepts (SELFIES
  makes almost every mask-free row valid; an all-padding row is empty and invalid);
- ``uniqueness``: unique canonical SMILES / valid samples;
- ``novelty``: fraction of the unique valid molecules whose canonical SMILES is not in the
  training set (only when the training-set reference file exists);
- ``internal_diversity``: 1 - mean Tanimoto similarity of Morgan fingerprints (radius 2, 2048
  bits) over all pairs i < j of valid samples (duplicates included, so identical molecules give
  0; fewer than two valid samples give 0);
- ``log_likelihood`` (mean and median): the ELBO under the pre-trained model, nats per
  sequence of ``seq_len`` tokens, as for DNA/RNA.

The training set is kept for decode time as sorted 64-bit hashes of its canonical SMILES
(``train_smiles_hashes.npy``, 8 bytes per molecule), written by ``train.py stage=pretrain``
(:meth:`MoleculeDomain.write_reference`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rdkit import Chem

from svdd_lightning.domains.molecules.chem import (
    contains_hashes,
    morgan_fingerprints,
    tanimoto_matrix,
    to_mol,
)


def molecule_metrics(smiles: list[str | None], train_hashes: np.ndarray | None = None) -> dict[str, float]:
    """validity, uniqueness, internal_diversity and (with ``train_hashes``) novelty of decoded
    SMILES (None = invalid)."""
    total = len(smiles)
    mols = [to_mol(s) for s in smiles]
    valid = [m for m in mols if m is not None]
    canonical = [Chem.MolToSmiles(m) for m in valid]
    unique = sorted(set(canonical))
    out = {
        "validity": len(valid) / total if total else 0.0,
        "uniqueness": len(unique) / len(valid) if valid else 0.0,
    }
    if train_hashes is not None:
        seen = contains_hashes(train_hashes, unique)
        out["novelty"] = float((~seen).mean()) if unique else 0.0
    out["internal_diversity"] = internal_diversity(valid)
    return out


def internal_diversity(mols: list[Chem.Mol]) -> float:
    """1 - mean pairwise (i < j) Tanimoto similarity of Morgan fingerprints; 0 for < 2 molecules."""
    n = len(mols)
    if n < 2:
        return 0.0
    sim = tanimoto_matrix(morgan_fingerprints(mols))
    upper = sim[np.triu_indices(n, k=1)]
    return float(1.0 - upper.mean())


def load_train_hashes(path: str | Path) -> np.ndarray | None:
    path = Path(path)
    if not path.is_file():
        return None
    return np.load(path).astype(np.uint64, copy=False)
