"""Chemistry helpers for the molecule domain: SMILES <-> SELFIES <-> token ids, canonical
SMILES, Morgan fingerprints and compact hashes of SMILES sets.

Molecules are modelled as fixed-length rows of SELFIES tokens. The vocabulary is a small JSON
file (shipped at ``svdd_lightning/resources/selfies_vocab.json``) listing the tokens; token id
``i`` is ``tokens[i]``, the padding token ``[nop]`` (which selfies skips when decoding) fills
every row up to the model length, and id ``len(tokens)`` is the diffusion's mask token. Because
every SELFIES string decodes to a valid molecule, any row without mask tokens decodes to a
molecule (it can be empty, e.g. all padding, which counts as invalid).

Canonical SMILES are RDKit's (``Chem.MolToSmiles``, isomeric); they depend on the RDKit version,
which the project pins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import selfies as sf
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator
from torch import Tensor

from svdd_lightning.paths import resolve_path

PAD_TOKEN = "[nop]"
VOCAB_PATH = Path(__file__).resolve().parents[2] / "resources" / "selfies_vocab.json"
MORGAN_RADIUS = 2
MORGAN_BITS = 2048

RDLogger.DisableLog("rdApp.*")  # RDKit prints parse errors to stderr; we count and report them


def resolve_vocab_path(path: str | Path | None) -> Path:
    """The shipped vocabulary for None, else the path (relative ones tried from the working
    directory, then from the repository root)."""
    if path is None:
        return VOCAB_PATH
    return resolve_path(path)


class SelfiesVocabulary:
    """Fixed SELFIES vocabulary: token <-> id, and rows of ids <-> SMILES.

    ``tokens`` must contain the padding token ``[nop]``; ``mask_id`` (= ``len(tokens)``) is the
    diffusion's mask token, which never decodes (a row holding one is invalid)."""

    def __init__(self, tokens: Sequence[str], *, path: Path | None = None) -> None:
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"SELFIES vocabulary {path or ''} repeats tokens: {tokens}")
        if PAD_TOKEN not in tokens:
            raise ValueError(f"SELFIES vocabulary {path or ''} lacks the padding token {PAD_TOKEN}")
        self.tokens = tokens
        self.path = path
        self.index = {tok: i for i, tok in enumerate(tokens)}
        self.pad_id = self.index[PAD_TOKEN]
        self.mask_id = len(tokens)
        self._decode_cache: dict[bytes, str | None] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def load(cls, path: str | Path | None = None) -> SelfiesVocabulary:
        """Read a vocabulary JSON ({"tokens": [...], ...}); None reads the shipped one."""
        from svdd_lightning.errors import DataError

        resolved = resolve_vocab_path(path)
        try:
            data = json.loads(resolved.read_text())
            tokens = data["tokens"]
        except FileNotFoundError as exc:
            raise DataError(
                f"SELFIES vocabulary {resolved} does not exist. Point domain.vocab at the vocabulary the model "
                f"was trained with (the shipped one is {VOCAB_PATH})."
            ) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"SELFIES vocabulary {resolved} could not be read ({type(exc).__name__}: {exc}); it must be a JSON "
                f"object with a 'tokens' list. Restore the file or rebuild it with `python -m datamodules.molecule`."
            ) from exc
        return cls(tokens, path=resolved)

    # -- encoding -------------------------------------------------------------------------- #

    def encode_selfies(self, selfies: str, seq_len: int) -> list[int]:
        """Ids of a SELFIES string padded with [nop] to ``seq_len``. Raises KeyError for a
        token outside the vocabulary and ValueError when longer than ``seq_len``."""
        ids = [self.index[tok] for tok in sf.split_selfies(selfies)]
        if len(ids) > seq_len:
            raise ValueError(f"{len(ids)} SELFIES tokens > seq_len={seq_len}")
        return ids + [self.pad_id] * (seq_len - len(ids))

    def encode_smiles(self, smiles: str, seq_len: int) -> list[int]:
        """SMILES -> canonical SMILES -> SELFIES -> padded ids (errors as in encode_selfies;
        ValueError also for an unparseable SMILES)."""
        canonical = canonical_smiles(smiles)
        if canonical is None:
            raise ValueError(f"unparseable SMILES {smiles!r}")
        return self.encode_selfies(sf.encoder(canonical), seq_len)

    # -- decoding -------------------------------------------------------------------------- #

    def to_selfies(self, ids: Iterable[int]) -> str | None:
        """Join the tokens of one row; None if it holds a mask (or any out-of-range) id."""
        out = []
        n = len(self.tokens)
        for i in ids:
            if not 0 <= i < n:
                return None
            out.append(self.tokens[i])
        return "".join(out)

    def decode_row(self, ids: Tensor | Sequence[int]) -> str | None:
        """SMILES decoded by selfies (not canonicalised); None for a row with a mask token or
        one that decodes to an empty molecule."""
        if isinstance(ids, Tensor):
            key = ids.detach().to("cpu", torch.int64).numpy().tobytes()
            ids = ids.tolist()
        else:
            ids = [int(i) for i in ids]
            key = np.asarray(ids, dtype=np.int64).tobytes()
        if key in self._decode_cache:
            return self._decode_cache[key]
        selfies = self.to_selfies(ids)
        smiles = None
        if selfies is not None:
            try:
                smiles = sf.decoder(selfies) or None
            except sf.DecoderError:
                smiles = None
        if len(self._decode_cache) > 200_000:
            self._decode_cache.clear()
        self._decode_cache[key] = smiles
        return smiles

    def decode(self, tokens: Tensor) -> list[str | None]:
        """(B, L) ids -> SMILES per row (None where invalid, see decode_row)."""
        if tokens.dim() != 2:
            raise ValueError(f"expected token ids of shape (B, L), got {tuple(tokens.shape)}")
        cpu = tokens.detach().to("cpu", torch.int64)
        return [self.decode_row(row) for row in cpu]

    def mols(self, tokens: Tensor) -> list[Chem.Mol | None]:
        """(B, L) ids -> RDKit molecules (None where invalid or empty)."""
        return [to_mol(s) for s in self.decode(tokens)]


# --------------------------------------------------------------------------------------- #
# SMILES / molecules
# --------------------------------------------------------------------------------------- #


def to_mol(smiles: str | None) -> Chem.Mol | None:
    """An RDKit molecule with at least one atom, or None."""
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical_smiles(smiles: str | None) -> str | None:
    """RDKit canonical SMILES, or None for an unparseable or empty one."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def smiles_hashes(smiles: Iterable[str]) -> np.ndarray:
    """Sorted unique 64-bit hashes (blake2b) of SMILES strings: a compact set for novelty
    (1.6 MB for 200k molecules; a false 'not novel' needs a 64-bit collision)."""
    values = {int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in smiles}
    return np.array(sorted(values), dtype=np.uint64)


def contains_hashes(table: np.ndarray, smiles: Sequence[str]) -> np.ndarray:
    """Boolean (len(smiles),): whether each SMILES' hash is in the sorted ``table``."""
    if len(smiles) == 0 or table.size == 0:
        return np.zeros(len(smiles), dtype=bool)
    queries = smiles_hashes_unsorted(smiles)
    pos = np.searchsorted(table, queries).clip(max=table.size - 1)
    return table[pos] == queries


def smiles_hashes_unsorted(smiles: Sequence[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in smiles],
        dtype=np.uint64,
    )


_MORGAN = None


def morgan_fingerprints(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """Morgan (ECFP4-like: radius 2, 2048 bits) fingerprints as a bool array (N, 2048)."""
    global _MORGAN
    if _MORGAN is None:
        _MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)
    out = np.zeros((len(mols), MORGAN_BITS), dtype=bool)
    for i, mol in enumerate(mols):
        out[i] = _MORGAN.GetFingerprintAsNumPy(mol).astype(bool)
    return out


def tanimoto_matrix(fps: np.ndarray) -> np.ndarray:
    """Pairwise Tanimoto similarities of bool fingerprints (N, B) -> (N, N)."""
    x = fps.astype(np.float32)
    inter = x @ x.T
    counts = x.sum(axis=1)
    union = counts[:, None] + counts[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(union > 0, inter / union, 1.0)  # two empty fingerprints count as identical
    return sim


# --------------------------------------------------------------------------------------- #
# Building a vocabulary
# --------------------------------------------------------------------------------------- #


def build_vocabulary(smiles: Iterable[str], *, seq_len: int | None = None, percentile: float = 99.9) -> dict:
    """Alphabet ([nop], then the sorted tokens) and length statistics of the SELFIES of
    ``smiles`` (canonicalised with RDKit first; unparseable ones are skipped and counted).
    The suggested ``seq_len`` is ``seq_len`` if given, else the ``percentile`` of lengths."""
    alphabet: set[str] = set()
    lengths = []
    skipped = 0
    for s in smiles:
        canonical = canonical_smiles(s)
        if canonical is None:
            skipped += 1
            continue
        try:
            toks = list(sf.split_selfies(sf.encoder(canonical)))
        except (sf.EncoderError, ValueError):
            skipped += 1
            continue
        alphabet.update(toks)
        lengths.append(len(toks))
    lengths_arr = np.asarray(lengths)
    alphabet.discard(PAD_TOKEN)
    if seq_len is None:
        seq_len = int(np.ceil(np.percentile(lengths_arr, percentile)))
    histogram = np.bincount(lengths_arr)
    return {
        "tokens": [PAD_TOKEN, *sorted(alphabet)],
        "seq_len": seq_len,
        "stats": {
            "molecules": int(lengths_arr.size),
            "skipped": skipped,
            "length_percentiles": {str(p): float(np.percentile(lengths_arr, p)) for p in (50, 90, 99, 99.9, 100)},
            "fraction_longer_than_seq_len": float((lengths_arr > seq_len).mean()),
            "length_histogram": {str(k): int(v) for k, v in enumerate(histogram) if v},
        },
    }
