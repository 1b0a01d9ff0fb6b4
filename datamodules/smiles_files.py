"""Reading molecule files: a SMILES file (.smi/.smiles/.txt: one SMILES per line, optionally followed by whitespace
and a name; blank lines and ``#`` comments skipped, a first line ``smiles ...`` taken as a header) or a CSV/TSV
table with a SMILES column (matched case-insensitively) and optional numeric label columns, each optionally
gzipped. Pure functions of a path and options; every bad file is a DataError naming it and what to do."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules.files import (TABLE_SUFFIXES, accepted, compression, format_of, open_text, require_bytes,
                               require_file, require_label_columns, table_separator)
from svdd_lightning.errors import DataError, data_error

SMILES_SUFFIXES = (".smi", ".smiles", ".txt")
FORMATS = {"smi": SMILES_SUFFIXES, "table": TABLE_SUFFIXES}
ACCEPTED = accepted(FORMATS)
# Label cells read as missing (the row is dropped and counted), not as a bad number.
MISSING = {"", "na", "nan", "n/a", "null", "none"}


def read_smiles(
    path: Path,
    *,
    smiles_column: str = "smiles",
    max_molecules: int | None = None,
    label_columns: Sequence[str] | None = None,
) -> tuple[list[str], list[int], np.ndarray | None]:
    """SMILES strings, their 1-based line numbers in ``path`` (header counted) and, for a table
    with ``label_columns``, the labels as float64 (N, K) (NaN where a cell is empty)."""
    require_file(path, fix="Check data.path (a relative path is tried in the working directory, then in the "
                           "repository root).")
    require_bytes(path, fix="Point data.path at a SMILES file or CSV with molecules.")
    kind = format_of(path, FORMATS, fix="Use .smi for one SMILES per line (optionally followed by a name) or "
                                        ".csv/.tsv for a table with a 'smiles' column.")
    if kind == "smi" and label_columns:
        raise data_error(path, f"is a SMILES file, which has no label columns, but data.label_columns="
                               f"{list(label_columns)} was given.",
                         "Use a CSV/TSV with a smiles column and those columns, or set data.label_columns=null.")
    try:
        if kind == "smi":
            return (*read_smi(path, max_molecules), None)
        return read_smiles_table(path, smiles_column, max_molecules, label_columns)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise data_error(path, f"could not be read ({type(exc).__name__}: {str(exc).strip()}).",
                         "The file is probably truncated, corrupt or binary; fix or regenerate it, or point "
                         "data.path at another file.") from exc


def read_smi(path: Path, max_molecules: int | None) -> tuple[list[str], list[int]]:
    """The first field of each SMILES line and its line number."""
    smiles: list[str] = []
    lines: list[int] = []
    first = True
    with open_text(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            field = text.split()[0]
            if first and field.lower() == "smiles":
                first = False
                continue
            first = False
            smiles.append(field)
            lines.append(number)
            if max_molecules is not None and len(smiles) >= max_molecules:
                break
    if not smiles:
        raise data_error(path, "holds no SMILES (only blank lines, comments or a header).",
                         "Put one SMILES per line, optionally followed by a name.")
    return smiles, lines


def read_smiles_table(
    path: Path, smiles_column: str, max_molecules: int | None, label_columns: Sequence[str] | None
) -> tuple[list[str], list[int], np.ndarray | None]:
    """The SMILES column (stripped), the line of each row and the labels (see :func:`read_labels`)."""
    try:
        frame = pd.read_csv(path, sep=table_separator(path), dtype=str, keep_default_na=False, nrows=max_molecules,
                            compression=compression(path))
    except pd.errors.EmptyDataError as exc:
        raise data_error(path, "is empty: no header and no rows.",
                         f"Give it a header line with a '{smiles_column}' column.") from exc
    match = [c for c in frame.columns if str(c).strip().lower() == smiles_column.lower()]
    if not match:
        raise data_error(path, f"has no column {smiles_column!r} (matched case-insensitively); its columns are "
                               f"{list(map(str, frame.columns))}.",
                         "Name the SMILES column with data.smiles_column=NAME.")
    if len(frame) == 0:
        raise data_error(path, "has a header but no rows.", "Point data.path at a table holding molecules.")
    smiles = [s.strip() for s in frame[match[0]].tolist()]
    return smiles, list(range(2, len(smiles) + 2)), read_labels(frame, path, label_columns)


def read_labels(frame: pd.DataFrame, path: Path, label_columns: Sequence[str] | None) -> np.ndarray | None:
    """``label_columns`` of a table read as text, as float64 (N, K); NaN where a cell is missing."""
    if not label_columns:
        return None
    require_label_columns(path, frame.columns, label_columns)
    out = np.empty((len(frame), len(label_columns)), dtype=np.float64)
    for k, c in enumerate(label_columns):
        text = frame[c].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = (values.isna() & ~text.str.lower().isin(MISSING)).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise data_error(path, f", line {row + 2}: the label {text.iloc[row]!r} in column {c!r} is not a "
                                   f"number.",
                             f"Labels must be numbers (empty cells are dropped); fix or remove that row, or drop "
                             f"{c!r} from data.label_columns.")
        out[:, k] = values.to_numpy(dtype=np.float64)
    return out
