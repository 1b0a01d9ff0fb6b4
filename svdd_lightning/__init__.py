"""svdd-lightning: inference-time reward steering of pre-trained diffusion models (SVDD)."""

__version__ = "0.1.0"
