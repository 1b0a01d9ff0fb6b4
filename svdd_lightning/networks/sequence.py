"""Small convolutional networks for sequences (DNA, RNA, SELFIES tokens).

Dilated residual 1-D convolutions see a few hundred positions with a handful of layers and
run fast on a laptop CPU; the time fraction enters through FiLM (scale and shift per block).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from svdd_lightning.networks import records_arguments
from torch import Tensor, nn
from svdd_lightning.ranges import AtLeastOne


def time_features(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of the time fraction t in [0, 1], (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
    angles = t.float().unsqueeze(-1) * 1000.0 * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualConvBlock(nn.Module):
    def __init__(self, *, channels: int, kernel_size: int, dilation: int, time_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding="same")
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.film = nn.Linear(time_dim, 2 * channels)

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        scale, shift = self.film(temb).unsqueeze(-1).chunk(2, dim=1)
        y = self.norm(h) * (1 + scale) + shift
        y = self.conv2(F.gelu(self.conv1(F.gelu(y))))
        return h + y


class ConvTrunk(nn.Module):
    """Residual dilated conv stack over (B, C, L) features, conditioned on time."""

    def __init__(self, *, channels: int, num_layers: int, kernel_size: int, time_dim: int) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim))
        self.blocks = nn.ModuleList(
            ResidualConvBlock(channels=channels, kernel_size=kernel_size, dilation=2 ** (i % 4), time_dim=time_dim)
            for i in range(num_layers)
        )
        self.out_norm = nn.GroupNorm(1, channels)

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        temb = self.time_mlp(time_features(t, self.time_dim))
        for block in self.blocks:
            h = block(h, temb)
        return F.gelu(self.out_norm(h))


@records_arguments
class SequenceDenoiser(nn.Module):
    """tokens (B, L) in [0, V] (V = mask) and time fraction (B,) -> logits (B, L, V)."""

    def __init__(
        self, *, vocab_size: AtLeastOne, channels: AtLeastOne = 64, num_layers: AtLeastOne = 6, kernel_size: AtLeastOne = 5,
        time_dim: AtLeastOne = 64
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size + 1, channels)
        self.trunk = ConvTrunk(channels=channels, num_layers=num_layers, kernel_size=kernel_size, time_dim=time_dim)
        self.head = nn.Conv1d(channels, vocab_size, 1)

    def forward(self, tokens: Tensor, t: Tensor) -> Tensor:
        h = self.embed(tokens).transpose(1, 2)
        return self.head(self.trunk(h, t)).transpose(1, 2)


def soft_one_hot(x: Tensor, vocab_size: int) -> Tensor:
    """Long tokens (B, L) -> one-hot (B, L, V) with the mask token (= V) as all zeros, as in the
    reference SVDD value nets; float inputs (B, L, V) pass through (soft one-hots for guidance)."""
    if x.dtype.is_floating_point:
        return x
    return F.one_hot(x, vocab_size + 1)[..., :vocab_size].float()


@records_arguments
class SequenceRegressor(nn.Module):
    """One-hot sequence (mask = zeros) and optional time fraction -> a scalar per sequence.

    Used for SVDD-MC value functions (time-conditioned) and for reward oracles (t = 0).
    """

    def __init__(
        self, *, vocab_size: AtLeastOne, channels: AtLeastOne = 64, num_layers: AtLeastOne = 6, kernel_size: AtLeastOne = 5,
        time_dim: AtLeastOne = 64
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.stem = nn.Conv1d(vocab_size, channels, kernel_size, padding="same")
        self.trunk = ConvTrunk(channels=channels, num_layers=num_layers, kernel_size=kernel_size, time_dim=time_dim)
        self.head = nn.Sequential(nn.Linear(2 * channels, channels), nn.GELU(), nn.Linear(channels, 1))

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        onehot = soft_one_hot(x, self.vocab_size)
        if t is None:
            t = torch.zeros(onehot.shape[0], device=onehot.device)
        h = self.trunk(self.stem(onehot.transpose(1, 2)), t)
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)
        return self.head(pooled).squeeze(-1)
