"""Domains: one module or package per kind of object (see base.py for the contract)."""

from svdd_lightning.domains.base import Domain

__all__ = ["Domain"]
