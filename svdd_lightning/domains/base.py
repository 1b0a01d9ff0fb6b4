"""The Domain contract: everything that knows what the objects are.

A decode run only ever talks to its domain through these methods, so a new kind of object (proteins,
say) is one module with a ``Domain`` subclass plus a config node (``objects:``), with no edit
anywhere else. The decoders never see a domain: they work on tensors.

- objects <-> tensors: ``to_objects`` turns a batch of samples (or posterior-mean estimates) into the
  objects a user knows (``str`` sequences, SMILES, uint8 image arrays), ``None`` for an invalid one;
  ``from_objects`` goes back (used for seeds and references);
- ``to_text``: one line of text per sample (the ``sample`` column of ``samples.csv``);
- ``write_native``: the field's own files (FASTA, SMILES, NPY + PNG grid);
- ``naturalness``: how natural the samples stay (summary.json's ``naturalness``);
- ``draw_media``: pictures beside reward_hist.png (for sequences: per-position bars and a sequence logo of
  the redesigned positions, ``redesigned``); ``table_media``: what a samples table shows
  beside the text (``{"image": uint8 array}`` or ``{"molecule": SMILES}``);
- ``write_reference``: the held-out statistics ``naturalness`` compares against, written by
  ``train.py stage=pretrain``;
- ``checkpoint_metadata`` / ``check_checkpoint``: what a pre-trained checkpoint must agree on with
  the domain (e.g. a SELFIES vocabulary), recorded at training and checked at decoding.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor


class Domain:
    """Base class with the defaults a minimal domain can keep (no media, no naturalness)."""

    name: str = "domain"

    # -- objects <-> tensors ------------------------------------------------------------ #

    def to_objects(self, samples: Tensor) -> list[Any]:
        """One object per row of ``samples`` (``None`` where the row is no valid object)."""
        raise NotImplementedError

    def from_objects(self, objects: Sequence[Any]) -> Tensor:
        """The tensor rows of ``objects`` (the inverse of :meth:`to_objects` on valid objects)."""
        raise NotImplementedError

    def object_key(self, obj: Any) -> Hashable:
        """A hashable key under which a reward's score of ``obj`` is memoised (equal keys = one object)."""
        return obj

    # -- text and files ----------------------------------------------------------------- #

    def to_text(self, samples: Tensor) -> list[str]:
        return [str(obj) for obj in self.to_objects(samples)]

    def describe(self, sample: Tensor) -> str:
        """How an error message shows one object (a row of a batch, shape (1, ...))."""
        return self.to_text(sample)[0]

    def write_native(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                     indices: list[int]) -> list[Path]:
        """The field's own files of the samples, written atomically; returns their paths."""
        return []

    # -- evidence ----------------------------------------------------------------------- #

    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        """Naturalness metrics of the samples (index order) under ``diffusion``; ``init``: the seeds they started
        from (svdd_lightning/inpainting.py's Inpainting), or None for a decode from the prior."""
        return {}

    def draw_media(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                   reward_name: str, decoder_name: str, redesigned: Tensor | None = None) -> list[Path]:
        """Pictures of the samples, written atomically into ``directory``; returns their paths. ``redesigned``
        (samples' shape, bool): the positions each sample was free to change when the decode started from seeds
        (inpainting), None for a decode from the prior. A domain may leave the argument out of its signature."""
        return []

    def table_media(self, samples: Tensor, texts: list[str], row: int) -> dict[str, Any]:
        return {}

    def write_reference(self, datamodule: Any, directory: Path) -> list[Path]:
        return []

    # -- checkpoints -------------------------------------------------------------------- #

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {}

    def check_checkpoint(self, path: str | Path, metadata: dict[str, Any]) -> None:
        """Raise a CheckpointError when a pre-trained checkpoint disagrees with this domain."""
