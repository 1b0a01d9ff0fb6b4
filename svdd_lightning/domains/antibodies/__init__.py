"""Antibody variable domains (the antibody domain: AntiBERTy, CDR inpainting)."""

from svdd_lightning.domains.antibodies.domain import AntibodyDomain, cdr_h3_range

__all__ = ["AntibodyDomain", "cdr_h3_range"]
