"""Naturalness metrics any domain can use: how close samples stay to the pre-trained model and the
real data, and how diverse they are (the domains in ``svdd_lightning/domains/`` pick theirs)."""

from __future__ import annotations

import itertools

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
