"""LightningDataModules that read real data sets."""

from datamodules.dna import DNADataModule
from datamodules.sequences import SequenceDataModule, read_sequences, windows

__all__ = ["DNADataModule", "SequenceDataModule", "read_sequences", "windows"]
