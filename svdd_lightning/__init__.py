"""svdd-lightning: inference-time reward steering of pre-trained diffusion models (SVDD).

The Python API (``svdd_lightning.decode``, svdd_lightning/api.py) and the domains are loaded on first
use, so importing a submodule stays cheap.
"""

__version__ = "0.1.0"

from svdd_lightning.reward_choice import register_resolvers as _register_resolvers

_register_resolvers()  # ${reward_label:...} in configs/ (the chosen rewards' name, from config values)

_LAZY = {
    "decode": "svdd_lightning.api", "DecodeResult": "svdd_lightning.api", "build_decoder": "svdd_lightning.api",
    "load_diffusion": "svdd_lightning.checkpoints",
    "Domain": "svdd_lightning.domains.base", "SequenceDomain": "svdd_lightning.domains.sequences",
    "NucleotideDomain": "svdd_lightning.domains.nucleotides", "MoleculeDomain": "svdd_lightning.domains.molecules",
    "ImageDomain": "svdd_lightning.domains.images", "ObjectReward": "svdd_lightning.rewards.objects",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'svdd_lightning' has no attribute {name!r}")
