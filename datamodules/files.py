"""What every reader of a data file needs before it parses anything: the file is there and not empty, its format
follows from its name (a trailing .gz ignored), gzip is recognised by content (a .gz name is not trusted either
way), tables name the columns they were asked for. Public, so readers import nothing private from each other."""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from svdd_lightning.errors import data_error

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def compression(path: Path) -> str | None:
    """pandas' ``compression=`` for ``path``: by content, whatever the name says."""
    return "gzip" if is_gzip(path) else None


def open_text(path: Path, *, encoding: str) -> IO[str]:
    """Text handle, transparently gunzipping gzip content whatever the file name says."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding=encoding, newline=None)
    return open(path, encoding=encoding, newline=None)


def plain_name(path: Path) -> str:
    """The file name, lower case, without a trailing .gz."""
    return path.name.lower().removesuffix(".gz")


TABLE_SUFFIXES = (".csv", ".tsv")  # tables of sequences or of SMILES alike; table_separator reads which


def table_separator(path: Path) -> str:
    return "\t" if plain_name(path).endswith(".tsv") else ","


def accepted(formats: Mapping[str, Sequence[str]]) -> str:
    """The accepted names of an error message: every suffix, plain and gzipped."""
    return ", ".join(s + z for suffixes in formats.values() for s in suffixes for z in ("", ".gz"))


def format_of(path: Path, formats: Mapping[str, Sequence[str]], *, fix: str) -> str:
    """The format (a key of ``formats``) whose suffixes hold the file's suffix, .gz ignored."""
    suffix = Path(plain_name(path)).suffix
    for name, suffixes in formats.items():
        if suffix in suffixes:
            return name
    raise data_error(path, f"has an unknown extension {suffix or '(none)'!r}: accepted are {accepted(formats)}.", fix)


def require_file(path: Path, *, fix: str) -> None:
    if not path.is_file():
        raise data_error(path, f"does not exist{' (it is a folder)' if path.is_dir() else ''}.", fix)


def require_bytes(path: Path, *, fix: str) -> None:
    if path.stat().st_size == 0:
        raise data_error(path, "is empty (0 bytes).", fix)


def require_label_columns(path: Path, columns: Sequence[object], label_columns: Sequence[str]) -> None:
    absent = [c for c in label_columns if c not in columns]
    if absent:
        raise data_error(path, f"lacks the label column(s) {absent}; its columns are {list(map(str, columns))}.",
                         "Set data.label_columns to columns it has (or to null to train without labels).")
