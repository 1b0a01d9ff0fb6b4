"""Molecules: SELFIES token rows (chem.py), MOSES-style naturalness (naturalness.py), the domain (domain.py)."""

from svdd_lightning.domains.molecules.domain import MoleculeDomain

__all__ = ["MoleculeDomain"]
