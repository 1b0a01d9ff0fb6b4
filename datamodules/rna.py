"""RNA sequences: the embedded default is 5,681 full-length 16S rRNAs (Debian's ncbi-data,
BLAST database Combined16SrRNA_2-12-2008, decoded by datamodules/blastdb.py into
data/rna/16S_rRNA.fa by `make setup`), cut into non-overlapping 50-nt windows: about 162k
windows, of which about 150k hold only A/C/G/U (windows with IUPAC ambiguity codes are dropped).

A labelled 5'UTR table works too (e.g. the Sample et al. 50-nt UTRs with their mean ribosome
load): ``data.path=utrs.csv data.sequence_column=utr data.label_columns=[rl]``; every row must
then already be ``seq_len`` long (no windowing), T is read as U.
"""

from __future__ import annotations

from collections.abc import Sequence

from datamodules.sequences import SequenceDataModule
from svdd_lightning.domains.nucleotides import RNA, NucleotideDomain
from svdd_lightning.ranges import AtLeastOne, Probability

DEFAULT_RNA_PATH = "data/rna/16S_rRNA.fa"


class RNADataModule(SequenceDataModule):
    """:class:`SequenceDataModule` over ACGU (T read as U) with the 16S rRNA set as default
    file. ``stride`` defaults to ``seq_len`` (non-overlapping windows)."""

    def __init__(
        self,
        *,
        domain: NucleotideDomain | None = None,
        alphabet: str = RNA,
        path: str | None = None,
        default_path: str | None = DEFAULT_RNA_PATH,
        seq_len: int = 50,
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
