"""Naturalness metrics: how close samples stay to the pre-trained model and the real data."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion


def kmer_frequencies(tokens: torch.Tensor, vocab_size: int, k: int = 3) -> np.ndarray:
    """Normalised k-mer counts over all windows of all sequences, (V ** k,)."""
    tokens = tokens.long()
    codes = torch.zeros(tokens.shape[0], tokens.shape[1] - k + 1, dtype=torch.long)
    for j in range(k):
        codes = codes * vocab_size + tokens[:, j : tokens.shape[1] - k + 1 + j]
    counts = torch.bincount(codes.flatten(), minlength=vocab_size**k).double()
    return (counts / counts.sum()).numpy()


def kmer_names(alphabet: str, k: int = 3) -> list[str]:
    return ["".join(p) for p in itertools.product(alphabet, repeat=k)]


def kmer_correlation(tokens: torch.Tensor, reference: np.ndarray, vocab_size: int, k: int = 3) -> float:
    """Pearson correlation of k-mer frequencies of samples against a reference set."""
    return float(np.corrcoef(kmer_frequencies(tokens, vocab_size, k), reference)[0, 1])


def unique_fraction(samples: torch.Tensor) -> float:
    """The fraction of distinct objects among the samples (exact copies count once)."""
    flat = samples.reshape(samples.shape[0], -1)
    return float(torch.unique(flat, dim=0).shape[0] / max(samples.shape[0], 1))


def token_diversity(tokens: torch.Tensor, vocab_size: int) -> float:
    """Mean pairwise Hamming distance between sequences as a fraction of their length, over all
    pairs i != j (0: all identical; about 1 - 1/V for independent uniform sequences). Computed
    from per-position token counts: the pairs that agree at a position are sum_v c_v (c_v - 1)."""
    n = tokens.shape[0]
    if n < 2:
        return float("nan")
    counts = torch.nn.functional.one_hot(tokens.long(), vocab_size).sum(dim=0).double()  # (L, V)
    agreeing = (counts * (counts - 1)).sum(dim=-1) / (n * (n - 1))  # (L,)
    return float(1.0 - agreeing.mean())


def pairwise_rms_distance(samples: torch.Tensor) -> float:
    """Mean root-mean-square difference between two different samples (continuous objects,
    e.g. images in [-1, 1]), over all pairs i != j."""
    n = samples.shape[0]
    if n < 2:
        return float("nan")
    flat = samples.reshape(n, -1).double()
    dist = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    return float(dist.sum() / (n * (n - 1)))


def load_kmer_reference(path: str | Path) -> np.ndarray | None:
    path = Path(path)
    if not path.is_file():
        return None
    return np.asarray(json.loads(path.read_text())["frequencies"], dtype=float)


class SequenceNaturalness:
    """Naturalness of DNA/RNA samples; the domain config's ``naturalness`` node builds it.

    ``reference`` is a JSON file written by ``train.py stage=pretrain`` from held-out windows.
    """

    reference_name = "heldout_3mer.json"

    def __init__(self, *, vocab_size: int, alphabet: str, reference: str | None = None) -> None:
        self.vocab_size = vocab_size
        self.alphabet = alphabet
        self.reference = reference

    def __call__(self, samples: torch.Tensor, *, diffusion: Diffusion, seed: int) -> dict[str, float]:
        from svdd_lightning.checkpoints import resolve_path

        kmer_reference = load_kmer_reference(resolve_path(self.reference)) if self.reference else None
        return sequence_naturalness(samples, diffusion=diffusion, vocab_size=self.vocab_size,
                                    kmer_reference=kmer_reference, seed=seed)

    def write_reference(self, datamodule, directory: Path) -> Path:
        """Held-out statistics the metric compares samples against."""
        path = Path(directory) / self.reference_name
        freqs = kmer_frequencies(datamodule.val_tokens, self.vocab_size, 3)
        path.write_text(json.dumps({"k": 3, "kmers": kmer_names(self.alphabet, 3), "frequencies": freqs.tolist(),
                                    "num_sequences": int(datamodule.val_tokens.shape[0])}, indent=1))
        return path


@torch.no_grad()
def elbo_log_likelihood(samples: torch.Tensor, *, diffusion: Diffusion, seed: int, batch_size: int = 256,
                        num_estimates: int = 16) -> dict[str, float]:
    """ELBO log-likelihood under the pre-trained model (nats per object, mean and median), in
    batches, each sample's Monte-Carlo draws seeded by its index (so the number does not depend on
    the batch size)."""
    lls = []
    device = diffusion.device
    for start in range(0, samples.shape[0], batch_size):
        chunk = samples[start : start + batch_size].to(device)
        gens = ops.make_generators(seed + 1, range(start, start + chunk.shape[0]))
        lls.append(diffusion.log_likelihood(chunk, gens, num_estimates=num_estimates).cpu())
    ll = torch.cat(lls)
    return {"log_likelihood": float(ll.mean()), "log_likelihood_median": float(ll.median())}


@torch.no_grad()
def sequence_naturalness(
    samples: torch.Tensor,
    *,
    diffusion: Diffusion,
    vocab_size: int,
    kmer_reference: np.ndarray | None,
    seed: int,
    batch_size: int = 256,
    num_estimates: int = 16,
) -> dict[str, float]:
    """ELBO log-likelihood under the pre-trained model (nats per sequence), 3-mer correlation
    with held-out real windows, the fraction of unique sequences and their diversity (mean
    pairwise Hamming distance per position)."""
    out = elbo_log_likelihood(samples, diffusion=diffusion, seed=seed, batch_size=batch_size,
                              num_estimates=num_estimates)
    out["unique_fraction"] = unique_fraction(samples)
    diversity = token_diversity(samples, vocab_size)
    if diversity == diversity:  # not NaN: needs two samples
        out["diversity"] = diversity
    if kmer_reference is not None:
        out["kmer3_correlation"] = kmer_correlation(samples, kmer_reference, vocab_size)
    return out
