"""Small convolutional networks for images (B, C, H, W), sized for 8x8 digits on a CPU.

``ImageDenoiser`` is a one-level UNet (H, W divisible by 2): residual blocks at full and half
resolution joined by a skip connection, with the time fraction entering every block through
FiLM (a per-channel scale and shift from sinusoidal time features). Only per-sample
normalisation (GroupNorm) is used, so a sample's output never depends on its batch mates, as
the per-sample-randomness contract of the decoders requires.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svdd_lightning.networks.sequence import time_features


def _groups(channels: int) -> int:
    """GroupNorm groups: up to 8, dividing ``channels``."""
    return math.gcd(8, channels)


class ResBlock2d(nn.Module):
    """GroupNorm -> FiLM(time) -> SiLU -> conv -> GroupNorm -> SiLU -> conv, plus a residual."""

    def __init__(self, *, in_channels: int, out_channels: int, time_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels), in_channels)
        self.film = nn.Linear(time_dim, 2 * in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        scale, shift = self.film(temb)[:, :, None, None].chunk(2, dim=1)
        y = self.conv1(F.silu(self.norm1(h) * (1 + scale) + shift))
        y = self.conv2(F.silu(self.norm2(y)))
        return self.skip(h) + y


class ImageDenoiser(nn.Module):
    """x (B, C, H, W) and time fraction t (B,) in [0, 1] -> a tensor of x's shape (epsilon)."""

    def __init__(self, *, in_channels: int = 1, channels: int = 32, time_dim: int = 64) -> None:
        super().__init__()
        if in_channels < 1 or channels < 1 or time_dim < 2:
            raise ValueError(
                f"ImageDenoiser needs in_channels >= 1, channels >= 1, time_dim >= 2; "
                f"got in_channels={in_channels}, channels={channels}, time_dim={time_dim}"
            )
        self.time_dim = time_dim
        wide = 2 * channels
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down_block = ResBlock2d(in_channels=channels, out_channels=channels, time_dim=time_dim)
        self.down = nn.Conv2d(channels, wide, 3, stride=2, padding=1)
        self.mid_block = ResBlock2d(in_channels=wide, out_channels=wide, time_dim=time_dim)
        self.up = nn.Conv2d(wide, channels, 3, padding=1)
        self.up_block = ResBlock2d(in_channels=2 * channels, out_channels=channels, time_dim=time_dim)
        self.out_norm = nn.GroupNorm(_groups(channels), channels)
        self.head = nn.Conv2d(channels, in_channels, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"ImageDenoiser needs (B, C, H, W) with even H and W, got {tuple(x.shape)}")
        t = t.to(x.device).float().expand(x.shape[0]) if t.dim() == 0 else t.to(x.device).float()
        temb = self.time_mlp(time_features(t, self.time_dim))
        skip = self.down_block(self.stem(x), temb)
        h = self.mid_block(self.down(skip), temb)
        h = self.up(F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
        h = self.up_block(torch.cat([h, skip], dim=1), temb)
        return self.head(F.silu(self.out_norm(h)))


class ImageClassifier(nn.Module):
    """x (B, C, H, W) -> class logits (B, num_classes): two conv stages and global pooling."""

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, channels: int = 32) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2 or channels < 1:
            raise ValueError(
                f"ImageClassifier needs in_channels >= 1, num_classes >= 2, channels >= 1; "
                f"got in_channels={in_channels}, num_classes={num_classes}, channels={channels}"
            )
        wide = 2 * channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, wide, 3, stride=2, padding=1),
            nn.GroupNorm(_groups(wide), wide),
            nn.SiLU(),
            nn.Conv2d(wide, wide, 3, padding=1),
            nn.GroupNorm(_groups(wide), wide),
            nn.SiLU(),
        )
        self.head = nn.Sequential(nn.Linear(2 * wide, wide), nn.SiLU(), nn.Linear(wide, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        pooled = torch.cat([h.mean(dim=(-2, -1)), h.amax(dim=(-2, -1))], dim=-1)
        return self.head(pooled)
