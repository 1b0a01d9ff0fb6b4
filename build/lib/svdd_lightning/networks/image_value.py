"""A value head for images: v(x_t, t) -> (B,), for SVDD-MC value regression (and, with t
omitted, as a plain image regressor for oracles).

Same building blocks as :mod:`svdd_lightning.networks.image`: time-conditioned (FiLM)
residual blocks at full and half resolution, then mean+max pooling and a small MLP. Only
per-sample normalisation (GroupNorm), so a sample's value never depends on its batch mates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from svdd_lightning.networks import records_arguments
from torch import Tensor, nn

from svdd_lightning.networks.image import ResBlock2d, _groups
from svdd_lightning.networks.sequence import time_features


@records_arguments
class ImageValueNet(nn.Module):
    """x (B, C, H, W) and time fraction t (B,) in [0, 1] (None = 0, clean) -> (B,)."""

    def __init__(self, *, in_channels: int = 1, channels: int = 32, time_dim: int = 64) -> None:
        super().__init__()
        if in_channels < 1 or channels < 1 or time_dim < 2:
            raise ValueError(
                f"ImageValueNet needs in_channels >= 1, channels >= 1, time_dim >= 2; "
                f"got in_channels={in_channels}, channels={channels}, time_dim={time_dim}"
            )
        wide = 2 * channels
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.block1 = ResBlock2d(in_channels=channels, out_channels=channels, time_dim=time_dim)
        self.down = nn.Conv2d(channels, wide, 3, stride=2, padding=1)
        self.block2 = ResBlock2d(in_channels=wide, out_channels=wide, time_dim=time_dim)
        self.out_norm = nn.GroupNorm(_groups(wide), wide)
        self.head = nn.Sequential(nn.Linear(2 * wide, wide), nn.SiLU(), nn.Linear(wide, 1))

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"ImageValueNet needs (B, C, H, W) images, got {tuple(x.shape)}")
        x = x.float()
        if t is None:
            t = torch.zeros(x.shape[0], device=x.device)
        t = t.to(x.device).float()
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        temb = self.time_mlp(time_features(t, self.time_dim))
        h = self.block1(self.stem(x), temb)
        h = self.block2(self.down(h), temb)
        h = F.silu(self.out_norm(h))
        pooled = torch.cat([h.mean(dim=(-2, -1)), h.amax(dim=(-2, -1))], dim=-1)
        return self.head(pooled).squeeze(-1)
