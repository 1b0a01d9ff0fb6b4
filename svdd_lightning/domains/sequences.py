"""Token sequences over a fixed alphabet (one letter per token): the generic sequence domain.

Token ``i`` is ``alphabet[i]``; ``len(alphabet)`` is the masked diffusion's mask token, which prints
as ``mask_letter`` (a leftover mask is never a valid object). Samples are written as FASTA with
Biopython, and their naturalness is the ELBO under the pre-trained model, the fraction of unique
sequences, their diversity and the 3-mer correlation with held-out real sequences.

Pictures beside reward_hist.png: ``samples_positions.png`` (per-position letter frequencies as stacked bars)
and ``samples_logo.png``, a sequence logo in bits drawn with logomaker (svdd_lightning/domains/logos.py), 50
positions per row; after an inpainting decode the logo covers only the redesigned positions, at their real
1-based indices, and its title names the region.

:class:`svdd_lightning.domains.nucleotides.NucleotideDomain` adds what DNA and RNA need on top
(IUPAC ambiguity codes, T read as U, letter colours); a user's own alphabet (proteins, a toy
3-letter one) subclasses or configures this class directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from svdd_lightning.atomic import atomic_path
from svdd_lightning.domains.base import Domain
from svdd_lightning.metrics import (elbo_log_likelihood, kmer_correlation, kmer_frequencies, kmer_names,
                                    token_diversity, unique_fraction)


class AlphabetError(ValueError):
    """A sequence holds letters outside its alphabet."""


def encode(sequences: Iterable[str], alphabet: str) -> Tensor:
    """Equal-length sequences -> long tokens (N, L). Case-insensitive; raises AlphabetError
    naming the first offending sequence and letter."""
    lut = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(alphabet):
        lut[ord(ch)] = i
        lut[ord(ch.lower())] = i
    rows = []
    for n, seq in enumerate(sequences):
        codes = lut[np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)]
        if (codes < 0).any():
            bad = seq[int(np.argmax(codes < 0))]
            raise AlphabetError(f"sequence {n} has letter {bad!r} outside the alphabet {alphabet}")
        rows.append(codes)
    if not rows:
        return torch.empty((0, 0), dtype=torch.long)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise AlphabetError(f"sequences must share one length, found lengths {sorted(lengths)[:5]}")
    return torch.from_numpy(np.stack(rows))


def decode(tokens: Tensor, alphabet: str, mask_letter: str = "?") -> list[str]:
    """Long tokens (N, L) -> strings; a leftover mask token (id len(alphabet)) prints as ``mask_letter``."""
    table = np.array(list(alphabet) + [mask_letter])
    arr = tokens.detach().cpu().numpy()
    return ["".join(row) for row in table[arr]]


class SequenceDomain(Domain):
    """Fixed-length sequences of single letters. Rewards over objects see ``str`` sequences (``None``
    for a row that still holds a mask token)."""

    name = "sequence"

    def __init__(self, *, alphabet: str, mask_letter: str = "?", naturalness_reference: str | None = None,
                 native_name: str = "samples.fasta", letter_colors: dict[str, str] | None = None,
                 logo_colors: str | None = None) -> None:
        """
        Args:
            alphabet: the letters, token i = alphabet[i] (upper case; input is read case-insensitively).
            mask_letter: how a leftover mask token prints (it is never part of a valid object).
            naturalness_reference: the held-out 3-mer statistics ``train.py stage=pretrain`` writes
                (``heldout_3mer.json``); without it the 3-mer correlation is left out.
            native_name: the FASTA file of the samples.
            letter_colors: matplotlib colours of the per-position frequency plot, per letter.
            logo_colors: logomaker's colour scheme of the sequence logo ('classic' for nucleotides,
                'chemistry' or 'hydrophobicity' for amino acids); None: logomaker's choice for the alphabet.
        """
        alphabet = str(alphabet).upper()
        if not alphabet or len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet must be distinct letters, e.g. 'ACGT', got {alphabet!r}")
        if len(mask_letter) != 1 or mask_letter.upper() in alphabet:
            raise ValueError(f"mask_letter must be one letter outside the alphabet {alphabet}, got {mask_letter!r}")
        self.alphabet = alphabet
        self.mask_letter = mask_letter
        self.naturalness_reference = naturalness_reference
        self.native_name = native_name
        self.letter_colors = dict(letter_colors or {})
        self.logo_colors = logo_colors
        self._letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    # -- objects <-> tensors ------------------------------------------------------------ #

    def tokens(self, samples: Tensor) -> Tensor:
        """Long tokens (B, L); float input (B, L, V) (one-hots or per-position probabilities) by argmax."""
        if samples.dtype.is_floating_point:
            if samples.dim() != 3 or samples.shape[-1] != self.vocab_size:
                raise ValueError(f"{type(self).__name__} takes long tokens (B, L) or float (B, L, {self.vocab_size}) "
                                 f"one-hots, got {samples.dtype} {tuple(samples.shape)}")
            samples = samples.argmax(dim=-1)
        if samples.dim() != 2:
            raise ValueError(f"{type(self).__name__} takes tokens of shape (B, L), got {tuple(samples.shape)}")
        return samples

    def to_objects(self, samples: Tensor) -> list[str | None]:
        tokens = self.tokens(samples).detach().cpu().numpy()
        valid = ((tokens >= 0) & (tokens < self.vocab_size)).all(axis=1)
        return [self._letters[row].tobytes().decode() if ok else None for row, ok in zip(tokens, valid)]

    def from_objects(self, objects: Sequence[str]) -> Tensor:
        return encode([self.clean(s) for s in objects], self.alphabet)

    def clean(self, sequence: str) -> str:
        """A sequence as read from a file, in this alphabet's conventions (upper case here)."""
        return sequence.upper()

    def known_letters(self) -> frozenset[str]:
        """Letters a data file may hold: the alphabet; windows with known letters outside the alphabet are
        dropped and counted, any other letter means the file is not of this kind."""
        return frozenset(self.alphabet)

    # -- text and files ----------------------------------------------------------------- #

    def to_text(self, samples: Tensor) -> list[str]:
        return decode(self.tokens(samples), self.alphabet, self.mask_letter)

    def write_native(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                     indices: list[int]) -> list[Path]:
        from Bio import SeqIO
        from Bio.Seq import Seq
        from Bio.SeqRecord import SeqRecord

        path = Path(directory) / self.native_name
        records = [SeqRecord(Seq(seq), id=f"sample_{i}", description=f"reward={r:.6g}")
                   for seq, r, i in zip(texts, rewards, indices)]
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            SeqIO.write(records, handle, "fasta")
        return [path]

    # -- evidence ----------------------------------------------------------------------- #

    @torch.no_grad()
    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        """ELBO log-likelihood under the pre-trained model (nats per sequence), the fraction of unique
        sequences, their diversity (mean pairwise Hamming distance per position) and, with a reference,
        the 3-mer correlation with held-out real sequences."""
        out = elbo_log_likelihood(samples, diffusion=diffusion, seed=seed)
        out["unique_fraction"] = unique_fraction(samples)
        diversity = token_diversity(samples, self.vocab_size)
        if diversity == diversity:  # not NaN: needs two samples
            out["diversity"] = diversity
        reference = self.load_kmer_reference()
        if reference is not None:
            out["kmer3_correlation"] = kmer_correlation(samples, reference, self.vocab_size)
        return out

    def load_kmer_reference(self) -> np.ndarray | None:
        from svdd_lightning.paths import resolve_path

        if not self.naturalness_reference:
            return None
        path = resolve_path(self.naturalness_reference)
        if not path.is_file():
            return None
        return np.asarray(json.loads(path.read_text())["frequencies"], dtype=float)

    def write_reference(self, datamodule: Any, directory: Path) -> list[Path]:
        """3-mer frequencies of the held-out windows (``heldout_3mer.json``)."""
        path = Path(directory) / "heldout_3mer.json"
        freqs = kmer_frequencies(datamodule.val_tokens, self.vocab_size, 3)
        path.write_text(json.dumps({"k": 3, "kmers": kmer_names(self.alphabet, 3), "frequencies": freqs.tolist(),
                                    "num_sequences": int(datamodule.val_tokens.shape[0])}, indent=1))
        return [path]

    def draw_media(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                   reward_name: str, decoder_name: str, redesigned: Tensor | None = None) -> list[Path]:
        """``samples_positions.png`` (stacked per-position frequencies) and ``samples_logo.png`` (a logo in bits);
        ``redesigned`` (B, L) bool: the positions each sample was free to change (an inpainting decode), which
        the logo is restricted to."""
        tokens = self.tokens(samples)
        bars = self.plot_position_frequencies(
            Path(directory) / "samples_positions.png", tokens,
            title=f"Per-position letter frequencies of {len(texts)} samples ({decoder_name}, {reward_name})")
        logo = self.plot_logo(Path(directory) / "samples_logo.png", texts, redesigned=redesigned,
                              label=f"{decoder_name}, {reward_name}")
        return [bars] if logo is None else [bars, logo]

    def plot_logo(self, path: Path, texts: list[str], *, redesigned: Tensor | None = None,
                  label: str = "") -> Path | None:
        """A sequence logo of ``texts`` over the positions where some sample holds a letter of the alphabet (a
        leftover mask is not counted) and, with ``redesigned``, was free to change it; None when no position
        is left."""
        from svdd_lightning.domains.logos import logo_matrix, plot_logo, region_label

        if not texts or not texts[0]:
            return None
        letters = np.array([list(t) for t in texts])
        counted = np.isin(letters, list(self.alphabet))
        if redesigned is not None:
            counted &= redesigned.detach().cpu().numpy().astype(bool)
        positions = (np.flatnonzero(counted.any(axis=0)) + 1).tolist()
        if not positions:
            return None
        matrix = logo_matrix(texts, positions, alphabet=self.alphabet, counted=counted)
        suffix = f" ({label})" if label else ""
        if redesigned is None:
            title = f"Sequence logo of {len(texts)} samples{suffix}"
        else:
            title = (f"Sequence logo of the redesigned region {region_label(positions)} ({len(positions)} of "
                     f"{len(texts[0])} positions), {len(texts)} samples{suffix}")
        return plot_logo(path, matrix, title=title, color_scheme=self.logo_colors)

    def plot_position_frequencies(self, path: Path, tokens: Tensor, *, title: str) -> Path:
        """Per-position letter frequencies of the samples, as stacked bars (a sequence-logo-like view)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        size = self.vocab_size
        onehot = torch.nn.functional.one_hot(tokens.long().clamp(max=size - 1), size).float()
        freqs = onehot.mean(dim=0).numpy()  # (L, V)
        positions = np.arange(1, freqs.shape[0] + 1)
        width = min(16.0, max(6.4, 0.06 * freqs.shape[0]))
        fig, ax = plt.subplots(figsize=(width, 3.2), dpi=110)
        bottom = np.zeros(freqs.shape[0])
        for j, letter in enumerate(self.alphabet):
            ax.bar(positions, freqs[:, j], bottom=bottom, width=1.0, color=self.letter_colors.get(letter),
                   label=letter, linewidth=0)
            bottom += freqs[:, j]
        ax.set_xlim(0.5, freqs.shape[0] + 0.5)
        ax.set_ylim(0, 1)
        ax.set_xlabel("position")
        ax.set_ylabel("frequency in samples")
        ax.set_title(title)
        ax.legend(ncol=min(size, 10), loc="upper right", fontsize=8, framealpha=0.8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return path
