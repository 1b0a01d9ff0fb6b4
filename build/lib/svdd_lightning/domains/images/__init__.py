"""Images: the domain (domain.py) and its naturalness metrics with an independent judge (naturalness.py)."""

from svdd_lightning.domains.images.domain import ImageDomain

__all__ = ["ImageDomain"]
