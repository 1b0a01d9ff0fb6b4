"""How samples of a domain are shown and written: text per sample and the field's own file format."""

from __future__ import annotations

from pathlib import Path

from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord
from torch import Tensor

from svdd_lightning import alphabet as alphabets
from svdd_lightning.atomic import atomic_path


class SequenceFormat:
    """DNA/RNA: samples are token tensors, written as FASTA (Biopython) with the reward in the header."""

    def __init__(self, *, alphabet: str, native_name: str = "samples.fasta") -> None:
        self.alphabet = alphabet
        self.native_name = native_name

    def to_text(self, samples: Tensor) -> list[str]:
        return alphabets.decode(samples, self.alphabet)

    def write_native(self, directory: Path, texts: list[str], rewards: list[float], indices: list[int]) -> Path:
        path = directory / self.native_name
        records = [
            SeqRecord(Seq(seq), id=f"sample_{i}", description=f"reward={r:.6g}")
            for seq, r, i in zip(texts, rewards, indices)
        ]
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            SeqIO.write(records, handle, "fasta")
        return path
