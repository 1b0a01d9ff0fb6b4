"""How molecule samples are shown and written: SMILES text and a ``samples.smi`` file."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from svdd_lightning.chem import SelfiesVocabulary, canonical_smiles
from svdd_lightning.atomic import atomic_path


class SmilesFormat:
    """Molecules: token rows -> RDKit canonical SMILES (the raw selfies SMILES where RDKit
    rejects it, an empty string for an invalid row); written as a SMILES file with one
    ``SMILES<TAB>sample_<index>`` line per sample (RDKit's ``SmilesMolSupplier`` reads it with
    ``delimiter='\\t', titleLine=False``)."""

    def __init__(self, *, vocab: str | None = None, native_name: str = "samples.smi") -> None:
        self.vocab = vocab
        self.native_name = native_name

    def to_text(self, samples: Tensor) -> list[str]:
        vocab = SelfiesVocabulary.load(self.vocab)
        out = []
        for smiles in vocab.decode(samples):
            out.append("" if smiles is None else (canonical_smiles(smiles) or smiles))
        return out

    def write_native(self, directory: Path, texts: list[str], rewards: list[float], indices: list[int]) -> Path:
        path = Path(directory) / self.native_name
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            for smiles, i in zip(texts, indices):
                handle.write(f"{smiles}\tsample_{i}\n")
        return path
