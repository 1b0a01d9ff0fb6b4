"""Molecules as fixed-length rows of SELFIES tokens (chem.py), shown and written as SMILES.

Rewards over objects see the SMILES that selfies decodes a row to (``None`` for a row with a mask
token or one that decodes to an empty molecule); ``samples.csv`` and ``samples.smi`` hold RDKit's
canonical SMILES (the raw selfies SMILES where RDKit rejects it, an empty string for an invalid
row). Naturalness follows MOSES/GuacaMol (naturalness.py); the media are a grid of the best
molecules drawn by RDKit, and W&B tables show them as ``wandb.Molecule``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from svdd_lightning.atomic import atomic_path
from svdd_lightning.domains.base import Domain
from svdd_lightning.domains.molecules.chem import SelfiesVocabulary, canonical_smiles, smiles_hashes
from svdd_lightning.domains.molecules.naturalness import load_train_hashes, molecule_metrics
from svdd_lightning.errors import CheckpointError
from svdd_lightning.metrics import elbo_log_likelihood
from svdd_lightning.paths import resolve_path


class MoleculeDomain(Domain):
    name = "molecules"
    reference_name = "train_smiles_hashes.npy"

    def __init__(self, *, vocab: str | None = None, seq_len: int = 48, naturalness_reference: str | None = None,
                 native_name: str = "samples.smi", grid_size: int = 16) -> None:
        """
        Args:
            vocab: the SELFIES vocabulary JSON (null: the shipped one); id len(tokens) is the mask.
            seq_len: SELFIES tokens per molecule (rows are padded with [nop]).
            naturalness_reference: hashes of the canonical training SMILES (novelty), written by
                ``train.py stage=pretrain``; without it, novelty is left out.
            native_name: the SMILES file of the samples.
            grid_size: how many of the best molecules ``samples_grid.png`` draws.
        """
        self.vocab_path = vocab
        self.vocabulary = SelfiesVocabulary.load(vocab)
        self.seq_len = int(seq_len)
        self.naturalness_reference = naturalness_reference
        self.native_name = native_name
        self.grid_size = int(grid_size)

    # -- objects <-> tensors ------------------------------------------------------------ #

    def tokens(self, samples: Tensor) -> Tensor:
        tokens = samples.argmax(dim=-1) if samples.dtype.is_floating_point else samples
        if tokens.dim() != 2:
            raise ValueError(f"molecules are token ids (B, L), got shape {tuple(samples.shape)}")
        return tokens

    def to_objects(self, samples: Tensor) -> list[str | None]:
        return [self.vocabulary.decode_row(row) for row in self.tokens(samples).detach().to("cpu", torch.int64)]

    def from_objects(self, objects: Sequence[str]) -> Tensor:
        return torch.tensor([self.vocabulary.encode_smiles(s, self.seq_len) for s in objects], dtype=torch.long)

    # -- text and files ----------------------------------------------------------------- #

    def to_text(self, samples: Tensor) -> list[str]:
        return ["" if smiles is None else (canonical_smiles(smiles) or smiles) for smiles in self.to_objects(samples)]

    def write_native(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                     indices: list[int]) -> list[Path]:
        """One ``SMILES<TAB>sample_<index>`` line per sample (RDKit's ``SmilesMolSupplier`` reads it with
        ``delimiter='\\t', titleLine=False``)."""
        path = Path(directory) / self.native_name
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            for smiles, i in zip(texts, indices):
                handle.write(f"{smiles}\tsample_{i}\n")
        return [path]

    # -- evidence ----------------------------------------------------------------------- #

    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        reference = self.naturalness_reference
        hashes = load_train_hashes(resolve_path(reference)) if reference else None
        out = molecule_metrics(self.vocabulary.decode(samples), hashes)
        out.update(elbo_log_likelihood(samples, diffusion=diffusion, seed=seed))
        return out

    def write_reference(self, datamodule: Any, directory: Path) -> list[Path]:
        """Sorted unique 64-bit hashes of the canonical training SMILES (for novelty)."""
        path = Path(directory) / self.reference_name
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, smiles_hashes(datamodule.train_smiles))
        return [path]

    def draw_media(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                   reward_name: str, decoder_name: str) -> list[Path]:
        """The best molecules by reward, drawn with RDKit and labelled with their reward."""
        from rdkit import Chem
        from rdkit.Chem import Draw

        mols, legends = [], []
        for i in np.argsort(-np.asarray(rewards)):
            mol = Chem.MolFromSmiles(texts[i]) if texts[i] else None
            if mol is None:
                continue
            mols.append(mol)
            legends.append(f"#{i} {reward_name}={rewards[i]:.3f}")
            if len(mols) == self.grid_size:
                break
        if not mols:
            return []
        path = Path(directory) / "samples_grid.png"
        image = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(260, 220), legends=legends)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
        return [path]

    def table_media(self, samples: Tensor, texts: list[str], row: int) -> dict[str, Any]:
        return {"molecule": texts[row]}

    # -- checkpoints -------------------------------------------------------------------- #

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"vocabulary": list(self.vocabulary.tokens)}

    def check_checkpoint(self, path: str | Path, metadata: dict[str, Any]) -> None:
        """Refuse a checkpoint whose recorded vocabulary differs from this one (a model reads token ids, so
        another token order of the same size would decode nonsense without any error)."""
        recorded = metadata.get("vocabulary")
        tokens = self.vocabulary.tokens
        if recorded is None or list(recorded) == list(tokens):
            return
        diff = next((i for i, (a, b) in enumerate(zip(recorded, tokens)) if a != b), min(len(recorded), len(tokens)))
        raise CheckpointError(
            f"checkpoint {resolve_path(path)} was trained with another vocabulary than "
            f"vocab={self.vocabulary.path} ({len(recorded)} vs {len(tokens)} tokens, first difference at id {diff}). "
            f"Pass the vocabulary file it was trained with (domain.vocab=PATH), or a checkpoint trained with this one.")
