"""DNA sequences: the embedded default is 26,454 Drosophila (dm3) 2 kb promoter sequences,
cut into 200-letter windows (fetched into data/dna/ by `make setup`)."""

from __future__ import annotations

from collections.abc import Sequence

from datamodules.sequences import SequenceDataModule
from svdd_lightning.domains.nucleotides import DNA, NucleotideDomain
from svdd_lightning.ranges import AtLeastOne, Probability

DEFAULT_DNA_PATH = "data/dna/dm3_upstream2000.fa.gz"


class DNADataModule(SequenceDataModule):
    """:class:`SequenceDataModule` over ACGT with the dm3 promoter set as default file."""

    def __init__(
        self,
        *,
        domain: NucleotideDomain | None = None,
        alphabet: str = DNA,
        path: str | None = None,
        default_path: str | None = DEFAULT_DNA_PATH,
        seq_len: int = 200,
        batch_size: AtLeastOne = 128,
        val_fraction: Probability = 0.05,
        max_windows: int | None = None,
        stride: int | None = None,
        sequence_column: str = "sequence",
        label_columns: Sequence[str] | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            domain=domain,
            alphabet=alphabet,
            path=path,
            default_path=default_path,
            seq_len=seq_len,
            batch_size=batch_size,
            val_fraction=val_fraction,
            max_windows=max_windows,
            stride=stride,
            sequence_column=sequence_column,
            label_columns=label_columns,
            num_workers=num_workers,
            seed=seed,
        )
