"""DNA and RNA: sequences over ACGT / ACGU with the conventions of nucleotide data.

On top of :class:`~svdd_lightning.domains.sequences.SequenceDomain`: a leftover mask prints as
``N`` (IUPAC "any base"), IUPAC ambiguity codes in data files are known letters (their windows are
dropped and counted, anything else is refused as "not nucleotide sequence"), an RNA alphabet reads
T as U, and the per-position plot and the sequence logo use the usual base colours (logomaker's 'classic').
"""

from __future__ import annotations

from svdd_lightning.domains.sequences import SequenceDomain

DNA = "ACGT"
RNA = "ACGU"

# IUPAC nucleotide codes: ambiguity letters (N, R, Y, ...) are real data and their windows are dropped
# and counted; anything else (X, J, digits, '*') means the file is not nucleotide sequence.
IUPAC_NUCLEOTIDES = frozenset("ACGTURYSWKMBDHVN-.")
BASE_COLORS = {"A": "tab:green", "C": "tab:blue", "G": "tab:orange", "T": "tab:red", "U": "tab:red"}


class NucleotideDomain(SequenceDomain):
    name = "nucleotides"

    def __init__(self, *, alphabet: str = DNA, naturalness_reference: str | None = None,
                 native_name: str = "samples.fasta") -> None:
        super().__init__(alphabet=alphabet, mask_letter="N", naturalness_reference=naturalness_reference,
                         native_name=native_name, letter_colors=BASE_COLORS, logo_colors="classic")
        # RNA alphabets (U but no T) read a T in a data file as U.
        self._translation = str.maketrans("T", "U") if "U" in self.alphabet and "T" not in self.alphabet else {}

    def clean(self, sequence: str) -> str:
        return sequence.upper().translate(self._translation)

    def known_letters(self) -> frozenset[str]:
        return IUPAC_NUCLEOTIDES | frozenset(self.alphabet)
