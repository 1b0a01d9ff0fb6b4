"""Diversity metrics that every summary reports, against their brute-force definitions."""

import itertools

import torch

from svdd_lightning.metrics import pairwise_rms_distance, token_diversity, unique_fraction


def test_token_diversity_is_the_mean_pairwise_hamming_fraction():
    tokens = torch.randint(0, 4, (9, 13), generator=torch.Generator().manual_seed(0))
    pairs = list(itertools.permutations(range(9), 2))
    brute = sum(float((tokens[i] != tokens[j]).float().mean()) for i, j in pairs) / len(pairs)
    assert abs(token_diversity(tokens, 4) - brute) < 1e-6
    assert token_diversity(tokens[:1].repeat(5, 1), 4) == 0.0
    assert token_diversity(torch.tensor([[0, 0], [1, 1]]), 4) == 1.0


def test_unique_fraction_and_rms_distance():
    x = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    assert unique_fraction(torch.cat([x, x[:2]])) == 6 / 8
    pairs = list(itertools.permutations(range(6), 2))
    brute = sum(float((x[i] - x[j]).pow(2).mean().sqrt()) for i, j in pairs) / len(pairs)
    assert abs(pairwise_rms_distance(x) - brute) < 1e-6
