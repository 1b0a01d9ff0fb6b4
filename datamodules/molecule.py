"""Molecules as fixed-length rows of SELFIES tokens.

The embedded default is the first ``max_molecules`` SMILES of the MOSES training set (ZINC,
MIT licence), read by path from the ``molsets`` wheel that `make setup` installs (the package
itself is never imported: its dependencies do not build). ``data.path=FILE`` reads the user's
own molecules instead: a SMILES file (``.smi``/``.smiles``/``.txt``: one SMILES per line,
optionally followed by whitespace and a name; blank lines and ``#`` comments skipped, a first
line ``smiles ...`` is taken as a header) or a CSV/TSV table with a ``smiles`` column (matched
case-insensitively; ``data.smiles_column`` names another), each optionally gzipped. A table
may also carry numeric label columns (``data.label_columns=[NAME, ...]``) for ``train.py
stage=oracle``; rows with a missing label are dropped and counted.

Every SMILES is parsed by RDKit, canonicalised and encoded into SELFIES with the fixed
vocabulary. An unparseable SMILES raises :class:`DataError` naming the file and line (or, with
``skip_invalid=true``, is dropped and counted, up to ``max_invalid_fraction`` of the file, beyond
which the file is taken to be broken and refused); molecules with SELFIES tokens outside the
vocabulary or longer than ``seq_len`` tokens are dropped and counted. Shorter ones are padded
with ``[nop]``. Batches are ``{"tokens": (B, seq_len) long}``, plus ``{"labels": (B, K) float}``
with ``label_columns``.
"""

from __future__ import annotations

import gzip
from importlib.util import find_spec
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import selfies as sf
import torch
from rdkit import Chem
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.sequences import _is_gzip, _TokenDataset
from svdd_lightning.domains.molecules.chem import VOCAB_PATH, SelfiesVocabulary, build_vocabulary, to_mol
from svdd_lightning.paths import resolve_path
from svdd_lightning.errors import ConfigError, DataError
from svdd_lightning.ranges import AtLeastOne, Probability

log = logging.getLogger("svdd_lightning.data")

SMILES_SUFFIXES = (".smi", ".smiles", ".txt")
TABLE_SUFFIXES = (".csv", ".tsv")
ACCEPTED = ", ".join(s + z for s in SMILES_SUFFIXES + TABLE_SUFFIXES for z in ("", ".gz"))


def moses_path(split: str = "train") -> Path:
    """The MOSES ``train``/``test`` SMILES inside the installed molsets wheel (found by path)."""
    spec = find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the default molecule data (MOSES, shipped inside the molsets wheel) is not installed. Run `make setup` "
            "(it installs molsets==0.3.1 with --no-deps), or point data.path at your own SMILES file or CSV."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset" / "data" / f"{split}.csv.gz"
    if not path.is_file():
        raise DataError(
            f"the MOSES file {path} is missing from the installed molsets package. Reinstall it with `make setup` "
            f"(pip install --no-deps --force-reinstall molsets==0.3.1), or point data.path at your own SMILES file."
        )
    return path


def _kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix in SMILES_SUFFIXES:
        return "smi"
    if suffix in TABLE_SUFFIXES:
        return "table"
    raise DataError(
        f"data file {path} has an unknown extension {suffix or '(none)'!r}: accepted are {ACCEPTED}. Use .smi for "
        f"one SMILES per line (optionally followed by a name) or .csv/.tsv for a table with a 'smiles' column."
    )


def read_smiles(
    path: Path,
    *,
    smiles_column: str = "smiles",
    max_molecules: int | None = None,
    label_columns: Sequence[str] | None = None,
) -> tuple[list[str], list[int], np.ndarray | None]:
    """SMILES strings, their 1-based line numbers in ``path`` (header counted) and, for a table
    with ``label_columns``, the labels as float64 (N, K) (NaN where a cell is empty)."""
    if not path.is_file():
        raise DataError(
            f"data file {path} does not exist{' (it is a folder)' if path.is_dir() else ''}. Check data.path (a "
            f"relative path is tried in the working directory, then in the repository root)."
        )
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty (0 bytes). Point data.path at a SMILES file or CSV with molecules.")
    kind = _kind(path)
    if kind == "smi" and label_columns:
        raise DataError(
            f"data file {path} is a SMILES file, which has no label columns, but data.label_columns="
            f"{list(label_columns)} was given. Use a CSV/TSV with a smiles column and those columns, or set "
            f"data.label_columns=null."
        )
    try:
        if kind == "smi":
            return (*_read_smi(path, max_molecules), None)
        return _read_table(path, smiles_column, max_molecules, label_columns)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(
            f"data file {path} could not be read ({type(exc).__name__}: {str(exc).strip()}). The file is probably "
            f"truncated, corrupt or binary; fix or regenerate it, or point data.path at another file."
        ) from exc


def _read_smi(path: Path, max_molecules: int | None) -> tuple[list[str], list[int]]:
    opener = gzip.open if _is_gzip(path) else open
    smiles: list[str] = []
    lines: list[int] = []
    first = True
    with opener(path, "rt", encoding="utf-8") as fh:
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
        raise DataError(f"data file {path} holds no SMILES (only blank lines, comments or a header). "
                        f"Put one SMILES per line, optionally followed by a name.")
    return smiles, lines


def _read_table(
    path: Path, smiles_column: str, max_molecules: int | None, label_columns: Sequence[str] | None
) -> tuple[list[str], list[int], np.ndarray | None]:
    sep = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, nrows=max_molecules,
                            compression="gzip" if _is_gzip(path) else None)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data file {path} is empty: no header and no rows. Give it a header line with a "
                        f"'{smiles_column}' column.") from exc
    match = [c for c in frame.columns if str(c).strip().lower() == smiles_column.lower()]
    if not match:
        raise DataError(
            f"data file {path} has no column {smiles_column!r} (matched case-insensitively); its columns are "
            f"{list(map(str, frame.columns))}. Name the SMILES column with data.smiles_column=NAME."
        )
    if len(frame) == 0:
        raise DataError(f"data file {path} has a header but no rows. Point data.path at a table holding molecules.")
    smiles = [s.strip() for s in frame[match[0]].tolist()]
    return smiles, list(range(2, len(smiles) + 2)), _labels(frame, path, label_columns)


_MISSING = {"", "na", "nan", "n/a", "null", "none"}


def _labels(frame: pd.DataFrame, path: Path, label_columns: Sequence[str] | None) -> np.ndarray | None:
    if not label_columns:
        return None
    absent = [c for c in label_columns if c not in frame.columns]
    if absent:
        raise DataError(
            f"data file {path} lacks the label column(s) {absent}; its columns are {list(map(str, frame.columns))}. "
            f"Set data.label_columns to columns it has (or to null to train without labels)."
        )
    out = np.empty((len(frame), len(label_columns)), dtype=np.float64)
    for k, c in enumerate(label_columns):
        text = frame[c].str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = (values.isna() & ~text.str.lower().isin(_MISSING)).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"data file {path}, line {row + 2}: the label {text.iloc[row]!r} in column {c!r} is not a number. "
                f"Labels must be numbers (empty cells are dropped); fix or remove that row, or drop {c!r} from "
                f"data.label_columns."
            )
        out[:, k] = values.to_numpy(dtype=np.float64)
    return out


class MoleculeDataModule(L.LightningDataModule):
    """SELFIES token rows of molecules from MOSES (default) or a user SMILES file / CSV.

    After :meth:`setup`: ``train_tokens``/``val_tokens`` (long (N, seq_len)), ``train_smiles``/
    ``val_smiles`` (RDKit-canonical SMILES of each split, for novelty), ``train_labels``/
    ``val_labels`` (float (N, K) with ``label_columns``, else None), ``label_names``, ``vocab``
    (the :class:`SelfiesVocabulary`), ``stats`` (counts) and ``data_path``. The train/validation split
    is a seeded random permutation of the kept molecules."""

    def __init__(
        self,
        *,
        vocab: str | None = None,
        path: str | None = None,
        seq_len: int = 48,
        batch_size: AtLeastOne = 128,
        val_fraction: Probability = 0.02,
        max_molecules: AtLeastOne | None = 200_000,
        smiles_column: str = "smiles",
        label_columns: Sequence[str] | None = None,
        skip_invalid: bool = False,
        max_invalid_fraction: Probability = 0.1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
            if int(value) <= 0:
                raise ConfigError(f"data.{name} must be a positive integer, got {value}.")
        if max_molecules is not None and int(max_molecules) <= 0:
            raise ConfigError(f"data.max_molecules must be a positive integer or null (all), got {max_molecules}.")
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1) (e.g. 0.02), got {val_fraction}.")
        if int(num_workers) < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}.")
        self.vocab_path = vocab
        self.path = None if path is None else str(path)
        self.seq_len = int(seq_len)
        self.batch_size = int(batch_size)
        self.val_fraction = float(val_fraction)
        self.max_molecules = None if max_molecules is None else int(max_molecules)
        self.smiles_column = smiles_column
        self.label_columns = list(label_columns) if label_columns else None
        self.label_names = self.label_columns
        self.skip_invalid = bool(skip_invalid)
        if not 0.0 <= float(max_invalid_fraction) <= 1.0:
            raise ValueError(f"max_invalid_fraction must be a fraction in [0, 1], got {max_invalid_fraction}")
        self.max_invalid_fraction = float(max_invalid_fraction)
        self.num_workers = int(num_workers)
        self.seed = int(seed)

        self.vocab: SelfiesVocabulary | None = None
        self.stats: dict[str, Any] | None = None
        self.data_path: Path | None = None
        self.train_tokens: Tensor | None = None
        self.val_tokens: Tensor | None = None
        self.train_smiles: list[str] | None = None
        self.val_smiles: list[str] | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    def _locate(self) -> Path:
        if self.path is None:
            if self.label_columns:
                raise DataError(
                    f"data.label_columns={self.label_columns} needs a labelled table, but the default data (MOSES) "
                    f"has no labels. Point data.path at a CSV with a smiles column and those label columns."
                )
            return moses_path("train")
        return resolve_path(self.path)

    def setup(self, stage: str | None = None) -> None:
        if self.train_tokens is not None:
            return
        self.vocab = SelfiesVocabulary.load(self.vocab_path)
        path = self._locate()
        smiles, lines, labels = read_smiles(path, smiles_column=self.smiles_column,
                                            max_molecules=self.max_molecules, label_columns=self.label_columns)
        rows, canon, kept, stats = self._encode(smiles, lines, path)
        values = None
        if labels is not None:
            values = labels[kept]
            has_label = ~np.isnan(values).any(axis=1)
            stats["dropped_missing_label"] = int((~has_label).sum())
            rows = [r for r, ok in zip(rows, has_label) if ok]
            canon = [c for c, ok in zip(canon, has_label) if ok]
            values = values[has_label]
            stats["kept"] = len(rows)
        if not rows:
            raise DataError(
                f"data file {path} yields no usable molecule: {_describe(stats, self.seq_len)}. Raise "
                f"domain.seq_len, use a vocabulary that covers these molecules (domain.vocab), or another file."
            )
        tokens = torch.tensor(rows, dtype=torch.long)
        n = len(rows)
        n_val = 0
        if self.val_fraction > 0 and n >= 2:
            n_val = min(n - 1, max(1, round(self.val_fraction * n)))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
        self.train_tokens = tokens[train_idx].contiguous()
        self.val_tokens = tokens[val_idx].contiguous()
        self.train_smiles = [canon[i] for i in train_idx.tolist()]
        self.val_smiles = [canon[i] for i in val_idx.tolist()]
        if values is not None:
            label_tensor = torch.from_numpy(values.astype(np.float32))
            self.train_labels = label_tensor[train_idx].contiguous()
            self.val_labels = label_tensor[val_idx].contiguous()
        stats.update(train=len(train_idx), val=n_val)
        self.stats = stats
        self.data_path = path
        log.info("data %s: %s; train %d, val %d, %d SELFIES tokens of length %d", path,
                 _describe(stats, self.seq_len), stats["train"], stats["val"], len(self.vocab), self.seq_len)

    def _encode(
        self, smiles: list[str], lines: list[int], path: Path
    ) -> tuple[list[list[int]], list[str], list[int], dict]:
        """Token rows, canonical SMILES and input positions of the kept molecules, and counts."""
        assert self.vocab is not None
        index, pad, seq_len = self.vocab.index, self.vocab.pad_id, self.seq_len
        rows: list[list[int]] = []
        canon: list[str] = []
        kept: list[int] = []
        invalid = unencodable = out_of_vocab = too_long = 0
        unknown: dict[str, int] = {}
        for position, (smi, line) in enumerate(zip(smiles, lines)):
            mol = to_mol(smi)
            if mol is None:
                if self.skip_invalid:
                    invalid += 1
                    continue
                raise DataError(
                    f"data file {path}, line {line}: the SMILES {smi[:80]!r} cannot be parsed by RDKit (or is empty). "
                    f"Fix or remove that line, or set data.skip_invalid=true to drop unparseable SMILES (they are "
                    f"counted in the log)."
                )
            can = Chem.MolToSmiles(mol)
            try:
                toks = list(sf.split_selfies(sf.encoder(can)))
            except (sf.EncoderError, ValueError):
                unencodable += 1
                continue
            try:
                ids = [index[t] for t in toks]
            except KeyError:
                out_of_vocab += 1
                for t in toks:
                    if t not in index:
                        unknown[t] = unknown.get(t, 0) + 1
                continue
            if len(ids) > seq_len:
                too_long += 1
                continue
            rows.append(ids + [pad] * (seq_len - len(ids)))
            canon.append(can)
            kept.append(position)
        if invalid and invalid > self.max_invalid_fraction * len(smiles):
            raise DataError(
                f"data file {path}: {invalid} of {len(smiles)} SMILES ({100 * invalid / len(smiles):.1f}%) cannot be "
                f"parsed by RDKit, more than data.max_invalid_fraction={self.max_invalid_fraction}. Is it a SMILES file "
                f"(or the right data.smiles_column)? Clean it, or raise data.max_invalid_fraction to accept it."
            )
        stats = {"molecules": len(smiles), "kept": len(rows), "invalid": invalid, "unencodable": unencodable,
                 "out_of_vocab": out_of_vocab, "too_long": too_long,
                 "unknown_tokens": dict(sorted(unknown.items(), key=lambda kv: -kv[1])[:10])}
        return rows, canon, kept, stats

    def _loader(self, tokens: Tensor | None, labels: Tensor | None, train: bool) -> DataLoader:
        if tokens is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(_TokenDataset(tokens, labels), batch_size=self.batch_size, shuffle=train,
                          generator=torch.Generator().manual_seed(self.seed) if train else None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_tokens, self.train_labels, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_tokens, self.val_labels, train=False)


def _describe(stats: dict[str, Any], seq_len: int) -> str:
    text = (f"{stats['molecules']} SMILES, kept {stats['kept']}, dropped {stats['invalid']} unparseable, "
            f"{stats['unencodable']} not encodable as SELFIES, {stats['out_of_vocab']} with tokens outside the "
            f"vocabulary, {stats['too_long']} longer than {seq_len} tokens")
    if stats.get("dropped_missing_label"):
        text += f", {stats['dropped_missing_label']} with a missing label"
    if stats.get("unknown_tokens"):
        text += f" (unknown tokens: {', '.join(stats['unknown_tokens'])})"
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Rebuild the shipped vocabulary from the first N MOSES training SMILES:
    ``python -m datamodules.molecule [N] [OUT.json] [SEQ_LEN]`` (defaults 200000, the shipped
    file, 48)."""
    import json
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    n = int(args[0]) if args else 200_000
    out = Path(args[1]) if len(args) > 1 else VOCAB_PATH
    seq_len = int(args[2]) if len(args) > 2 else 48
    import pandas as pd

    path = moses_path("train")
    smiles = pd.read_csv(path, nrows=n)["SMILES"].tolist()
    vocab = build_vocabulary(smiles, seq_len=seq_len)
    from importlib.metadata import version

    vocab["source"] = (f"first {n} SMILES of MOSES train.csv.gz (molsets 0.3.1), canonicalised by RDKit "
                       f"{version('rdkit')}, encoded by selfies {version('selfies')}: python -m datamodules.molecule")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(vocab, indent=1) + "\n")
    print(f"wrote {out}: {len(vocab['tokens'])} tokens, seq_len {vocab['seq_len']}, {vocab['stats']}")


if __name__ == "__main__":
    main()
