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

from importlib.util import find_spec
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import selfies as sf
import torch
from rdkit import Chem
from torch import Tensor

from datamodules.base import TableDataModule, check_positive, check_val_fraction, check_workers, seeded_split
from datamodules.smiles_files import ACCEPTED, SMILES_SUFFIXES, TABLE_SUFFIXES, read_smiles
from svdd_lightning.domains.molecules.chem import VOCAB_PATH, SelfiesVocabulary, build_vocabulary, to_mol
from svdd_lightning.paths import resolve_path
from svdd_lightning.errors import ConfigError, DataError, data_error
from svdd_lightning.ranges import AtLeastOne, Probability

# The readers moved to datamodules/smiles_files.py; these names are still imported from here.
__all__ = ["ACCEPTED", "SMILES_SUFFIXES", "TABLE_SUFFIXES", "MoleculeDataModule", "encode_molecules", "moses_path",
           "read_smiles"]

log = logging.getLogger("svdd_lightning.data")


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
        raise data_error(path, "is missing from the installed molsets package.",
                         "Reinstall it with `make setup` (pip install --no-deps --force-reinstall molsets==0.3.1), "
                         "or point data.path at your own SMILES file.", kind="the MOSES file")
    return path


class MoleculeDataModule(TableDataModule):
    """SELFIES token rows of molecules from MOSES (default) or a user SMILES file / CSV.

    After :meth:`setup`: ``train_tokens``/``val_tokens`` (long (N, seq_len)), ``train_smiles``/
    ``val_smiles`` (RDKit-canonical SMILES of each split, for novelty), ``train_labels``/
    ``val_labels`` (float (N, K) with ``label_columns``, else None), ``label_names``, ``vocab``
    (the :class:`SelfiesVocabulary`), ``stats`` (counts) and ``data_path``. The train/validation split
    is a seeded random permutation of the kept molecules."""

    COLUMNS = ("tokens", "labels")

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
        check_positive("seq_len", seq_len)
        check_positive("batch_size", batch_size)
        if max_molecules is not None and int(max_molecules) <= 0:
            raise ConfigError(f"data.max_molecules must be a positive integer or null (all), got {max_molecules}.")
        check_val_fraction(val_fraction, example=0.02)
        check_workers(num_workers)
        if not 0.0 <= float(max_invalid_fraction) <= 1.0:
            raise ValueError(f"max_invalid_fraction must be a fraction in [0, 1], got {max_invalid_fraction}")
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.vocab_path = vocab
        self.path = None if path is None else str(path)
        self.seq_len = int(seq_len)
        self.val_fraction = float(val_fraction)
        self.max_molecules = None if max_molecules is None else int(max_molecules)
        self.smiles_column = smiles_column
        self.label_columns = list(label_columns) if label_columns else None
        self.label_names = self.label_columns
        self.skip_invalid = bool(skip_invalid)
        self.max_invalid_fraction = float(max_invalid_fraction)

        self.vocab: SelfiesVocabulary | None = None
        self.stats: dict[str, Any] | None = None
        self.data_path: Path | None = None
        self.train_tokens: Tensor | None = None
        self.val_tokens: Tensor | None = None
        self.train_smiles: list[str] | None = None
        self.val_smiles: list[str] | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    def _file(self) -> Path:
        """The user's file as given (read_smiles names it when missing), or the MOSES default."""
        if self.path is None:
            if self.label_columns:
                raise DataError(
                    f"data.label_columns={self.label_columns} needs a labelled table, but the default data (MOSES) "
                    f"has no labels. Point data.path at a CSV with a smiles column and those label columns."
                )
            return moses_path("train")
        return resolve_path(self.path)

    def build(self) -> None:
        self.vocab = SelfiesVocabulary.load(self.vocab_path)
        path = self._file()
        smiles, lines, labels = read_smiles(path, smiles_column=self.smiles_column,
                                            max_molecules=self.max_molecules, label_columns=self.label_columns)
        rows, canon, kept, stats = encode_molecules(smiles, lines, path, vocab=self.vocab, seq_len=self.seq_len,
                                                    skip_invalid=self.skip_invalid,
                                                    max_invalid_fraction=self.max_invalid_fraction)
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
            raise data_error(path, f"yields no usable molecule: {_describe(stats, self.seq_len)}.",
                             "Raise domain.seq_len, use a vocabulary that covers these molecules (domain.vocab), or "
                             "another file.")
        tokens = torch.tensor(rows, dtype=torch.long)
        train_idx, val_idx = seeded_split(len(rows), self.val_fraction, self.seed)
        self.train_tokens = tokens[train_idx].contiguous()
        self.val_tokens = tokens[val_idx].contiguous()
        self.train_smiles = [canon[i] for i in train_idx.tolist()]
        self.val_smiles = [canon[i] for i in val_idx.tolist()]
        if values is not None:
            label_tensor = torch.from_numpy(values.astype(np.float32))
            self.train_labels = label_tensor[train_idx].contiguous()
            self.val_labels = label_tensor[val_idx].contiguous()
        stats.update(train=len(train_idx), val=len(val_idx))
        self.stats = stats
        self.data_path = path
        log.info("data %s: %s; train %d, val %d, %d SELFIES tokens of length %d", path,
                 _describe(stats, self.seq_len), stats["train"], stats["val"], len(self.vocab), self.seq_len)


def encode_molecules(
    smiles: list[str], lines: list[int], path: Path, *, vocab: SelfiesVocabulary, seq_len: int,
    skip_invalid: bool, max_invalid_fraction: float,
) -> tuple[list[list[int]], list[str], list[int], dict]:
    """Token rows (padded to ``seq_len``), canonical SMILES and input positions of the kept molecules, and counts.
    An unparseable SMILES is an error naming its line, or with ``skip_invalid`` dropped and counted (more than
    ``max_invalid_fraction`` of them: the file is taken to be broken)."""
    index, pad = vocab.index, vocab.pad_id
    rows: list[list[int]] = []
    canon: list[str] = []
    kept: list[int] = []
    invalid = unencodable = out_of_vocab = too_long = 0
    unknown: dict[str, int] = {}
    for position, (smi, line) in enumerate(zip(smiles, lines)):
        mol = to_mol(smi)
        if mol is None:
            if skip_invalid:
                invalid += 1
                continue
            raise data_error(path, f", line {line}: the SMILES {smi[:80]!r} cannot be parsed by RDKit (or is empty).",
                             "Fix or remove that line, or set data.skip_invalid=true to drop unparseable SMILES "
                             "(they are counted in the log).")
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
    if invalid and invalid > max_invalid_fraction * len(smiles):
        raise data_error(path, f": {invalid} of {len(smiles)} SMILES ({100 * invalid / len(smiles):.1f}%) cannot be "
                               f"parsed by RDKit, more than data.max_invalid_fraction={max_invalid_fraction}.",
                         "Is it a SMILES file (or the right data.smiles_column)? Clean it, or raise "
                         "data.max_invalid_fraction to accept it.")
    stats = {"molecules": len(smiles), "kept": len(rows), "invalid": invalid, "unencodable": unencodable,
             "out_of_vocab": out_of_vocab, "too_long": too_long,
             "unknown_tokens": dict(sorted(unknown.items(), key=lambda kv: -kv[1])[:10])}
    return rows, canon, kept, stats


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
