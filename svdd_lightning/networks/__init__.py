"""Small denoisers, value heads and classifiers per data shape.

A checkpoint names the network it holds (oracle checkpoints record class and arguments, so that
``reward=oracle`` needs nothing else): only the classes :func:`known_networks` lists are ever built from
a file's description, never an arbitrary class path a file names. Networks record the keyword arguments
they were built with (:func:`records_arguments`) for that description.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def records_arguments(cls: type) -> type:
    """Class decorator: instances keep their constructor's keyword arguments (defaults filled in) as
    ``init_arguments``, the description a checkpoint stores."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.init_arguments = {k: v for k, v in bound.arguments.items() if k != "self"}

    cls.__init__ = wrapped
    return cls


def known_networks() -> dict[str, type]:
    """Name -> class of every network a checkpoint may ask to be built."""
    from svdd_lightning.networks.image import ImageClassifier, PrototypeClassifier
    from svdd_lightning.networks.image_value import ImageValueNet
    from svdd_lightning.networks.sequence import SequenceDenoiser, SequenceRegressor

    return {cls.__name__: cls for cls in (ImageClassifier, PrototypeClassifier, ImageValueNet,
                                          SequenceDenoiser, SequenceRegressor)}


def describe_network(network: Any) -> dict[str, Any]:
    """The description a checkpoint stores: the class path (for people and older readers) and arguments."""
    name = type(network).__name__
    if known_networks().get(name) is not type(network) or not hasattr(network, "init_arguments"):
        from svdd_lightning.errors import ConfigError

        raise ConfigError(f"{type(network).__module__}.{name} is not one of the networks an oracle checkpoint may "
                          f"describe ({', '.join(known_networks())}); set oracle.network to one of them (or add "
                          f"yours to svdd_lightning.networks.known_networks).")
    return {"_target_": f"{type(network).__module__}.{name}", **network.init_arguments}
