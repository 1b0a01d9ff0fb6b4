"""Tiny seeded models shared by tests."""

from __future__ import annotations

import torch

from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.networks.sequence import SequenceDenoiser, SequenceRegressor
from svdd_lightning.rewards.dna import GCReward
from svdd_lightning.values.learned import LearnedValue


def tiny_masked(seq_len: int = 12, num_steps: int = 6, seed: int = 0) -> MaskedDiffusion:
    torch.manual_seed(seed)
    net = SequenceDenoiser(vocab_size=4, channels=8, num_layers=2, time_dim=8)
    return MaskedDiffusion(network=net, vocab_size=4, seq_len=seq_len, num_steps=num_steps).eval()


def tiny_value(num_steps: int = 6, seed: int = 0) -> LearnedValue:
    torch.manual_seed(seed)
    return LearnedValue(network=SequenceRegressor(vocab_size=4, channels=8, num_layers=2, time_dim=8),
                        num_steps=num_steps).eval()


def gc_reward() -> GCReward:
    return GCReward()
