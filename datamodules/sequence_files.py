"""Reading sequence files: FASTA (.fa/.fasta/.fna) with Biopython, CSV/TSV tables with pandas, each optionally
gzipped. Pure functions of a path and options; every bad file is a DataError naming it and what to do."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from Bio.SeqIO.FastaIO import SimpleFastaParser

from datamodules.files import (TABLE_SUFFIXES, accepted, compression, format_of, is_gzip, open_text, require_bytes,
                               require_file, require_label_columns, table_separator)
from svdd_lightning.errors import DataError, data_error

FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
FORMATS = {"fasta": FASTA_SUFFIXES, "table": TABLE_SUFFIXES}
ACCEPTED = accepted(FORMATS)


def read_sequences(
    path: str | Path,
    *,
    sequence_column: str = "sequence",
    label_columns: Sequence[str] | None = None,
    known_letters: frozenset[str] | None = None,
) -> tuple[list[str], pd.DataFrame | None]:
    """Read sequences (upper-cased) and, for a table with ``label_columns``, the labels. With
    ``known_letters`` (the domain's ``known_letters()``), a sequence holding any other letter is an error.

    FASTA (.fa/.fasta/.fna, optionally .gz) is read with Biopython; CSV/TSV (optionally
    .gz) with pandas, taking ``sequence_column`` and the optional ``label_columns`` (returned
    as a float DataFrame with one row per sequence, NaN where a label is missing)."""
    path = Path(path)
    require_file(path, fix="Check data.path; the embedded default data sets are fetched with `make setup`.")
    kind = format_of(path, FORMATS, fix="Rename the file to one of these (FASTA for raw sequences, CSV/TSV for a "
                                        "table with a sequence column) or point data.path at another file.")
    require_bytes(path, fix="Re-fetch or regenerate it (the embedded default comes from `make setup`) or point "
                            "data.path at another file.")
    if kind == "fasta":
        if label_columns:
            raise data_error(path, f"is FASTA, which has no label columns, but data.label_columns"
                                   f"={list(label_columns)} was given.",
                             "Use a CSV/TSV table with those columns, or set data.label_columns=null.")
        return read_fasta(path, known_letters), None
    return read_sequence_table(path, sequence_column, label_columns, known_letters)


def read_fasta(path: Path, known: frozenset[str] | None) -> list[str]:
    """The records' sequences, upper-cased, in file order."""
    try:
        with open_text(path, encoding="latin-1") as fh:
            first = ""
            for line in fh:
                if line.strip():
                    first = line.lstrip()
                    break
            if not first:
                raise data_error(path, f"holds no FASTA records (it is empty or only blank lines"
                                       f"{' once decompressed' if is_gzip(path) else ''}).",
                                 "Re-fetch or regenerate it (the embedded default comes from `make setup`), or "
                                 "point data.path at a FASTA file whose records start with '>'.")
            if not first.startswith(">"):
                raise data_error(path, f"is not FASTA: its first non-blank line starts with "
                                       f"{first[:20].rstrip()!r} instead of '>'.",
                                 "FASTA records look like '>name' followed by sequence lines; if this is a table "
                                 "of sequences, give it a .csv or .tsv extension, otherwise re-fetch or fix the file.")
            fh.seek(0)
            records = [(title, seq.upper()) for title, seq in SimpleFastaParser(fh)]
            sequences = [seq for _title, seq in records]
            check_letters(sequences, path, what="record", known=known,
                          names=[title.split()[0] if title else "" for title, _ in records])
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise data_error(path, f"could not be read as FASTA ({type(exc).__name__}: {exc}).",
                         "The file is probably truncated, corrupt or binary; re-fetch it (`make setup` for the "
                         "embedded default) or point data.path at a plain or gzipped FASTA file.") from exc
    if not sequences:
        raise data_error(path, "holds no FASTA records.", "Re-fetch or regenerate it, or point data.path at a FASTA "
                                                          "file whose records start with '>'.")
    return sequences


def read_sequence_table(
    path: Path, sequence_column: str, label_columns: Sequence[str] | None, known: frozenset[str] | None
) -> tuple[list[str], pd.DataFrame | None]:
    """``sequence_column`` (stripped, upper-cased) and ``label_columns`` as float64 (NaN where empty)."""
    sep = table_separator(path)
    what, separated = ("TSV", "tab") if sep == "\t" else ("CSV", "comma")
    try:
        frame = pd.read_csv(path, sep=sep, compression=compression(path), dtype={sequence_column: str},
                            encoding="utf-8")
    except pd.errors.EmptyDataError as exc:
        raise data_error(path, "is empty: it has no header line and no rows.",
                         f"Re-fetch or regenerate it, or point data.path at a CSV/TSV with a header line naming a "
                         f"'{sequence_column}' column.") from exc
    except (pd.errors.ParserError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise data_error(path, f"could not be parsed as {what} ({type(exc).__name__}: {str(exc).strip()}).",
                         f"Check that it is a {separated}-separated table with a header line (and that a .gz file "
                         f"is not truncated), then retry.") from exc
    if sequence_column not in frame.columns:
        raise data_error(path, f"has no column {sequence_column!r}; its columns are {list(map(str, frame.columns))}.",
                         "Name the column that holds the sequences with data.sequence_column=NAME.")
    if len(frame) == 0:
        raise data_error(path, "has a header but no rows.", "Point data.path at a table that holds sequences.")
    column = frame[sequence_column]
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise data_error(path, f"has an empty {sequence_column!r} cell in data row {row + 1} (line {row + 2} "
                               f"counting the header; {int(missing.sum())} such rows in all).",
                         "Remove those rows or fill them in, then retry.")
    sequences = [s.strip().upper() for s in column.astype(str)]
    check_letters(sequences, path, what="data row", known=known)
    if not label_columns:
        return sequences, None
    label_columns = list(label_columns)
    require_label_columns(path, frame.columns, label_columns)
    labels = pd.DataFrame(index=frame.index)
    for c in label_columns:
        numeric = pd.to_numeric(frame[c], errors="coerce")
        bad = (numeric.isna() & frame[c].notna()).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise data_error(path, f"has a non-numeric value {frame[c].iloc[row]!r} in label column {c!r}, data "
                                   f"row {row + 1} (line {row + 2} counting the header).",
                             f"Labels must be numbers; fix or remove those rows, or drop {c!r} from "
                             f"data.label_columns.")
        labels[c] = numeric.astype("float64")
    return sequences, labels.reset_index(drop=True)


def check_letters(sequences: Sequence[str], path: Path, *, what: str, known: frozenset[str] | None,
                  names: Sequence[str] | None = None) -> None:
    """Refuse sequences holding letters the domain does not know (``known``; None: no check), naming the
    first one."""
    if known is None:
        return
    for i, seq in enumerate(sequences):
        bad = set(seq) - known
        if bad:
            label = f"{what} {i + 1}" + (f" ({names[i]})" if names and names[i] else "")
            shown = "".join(sorted(bad))[:10]
            raise data_error(path, f", {label}: letters this domain does not know ({shown!r}); allowed are "
                                   f"{''.join(sorted(known))}.",
                             "Is it another kind of sequence (protein, nucleotides) or a corrupt file? Fix or "
                             "remove that sequence, or use the domain of that alphabet.")
