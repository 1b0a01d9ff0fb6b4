"""Small convolutional networks for images (B, C, H, W), sized for 8x8 digits on a CPU: the digit classifiers
(reward and naturalness judge) and the residual block of the SVDD-MC value network (``ResBlock2d``: the time
fraction enters through FiLM, a per-channel scale and shift from sinusoidal time features). The denoiser is
diffusers' ``UNet2DModel`` (configs/domain/image.yaml). Only per-sample normalisation (GroupNorm) is used, so a
sample's output never depends on its batch mates, as the per-sample-randomness contract of the decoders requires.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from svdd_lightning.networks import records_arguments
from torch import Tensor, nn



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


@records_arguments
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


@records_arguments
class PrototypeClassifier(nn.Module):
    """x (B, C, H, W) -> class logits (B, num_classes): a LeNet-style convolution stack and a
    distance-to-prototype head that stays unsure far from every class.

    The independent judge of the image naturalness metrics (``checkpoints/image/
    naturalness_classifier.ckpt``), built to share nothing with :class:`ImageClassifier` (the
    ``digit`` reward's network: 3x3 convolutions with GroupNorm and SiLU, a strided convolution,
    global mean and max pooling, a linear head): here a 5x5 and a 3x3 convolution with ReLU, each
    followed by 2x2 max pooling, a flattened (position-aware) linear layer to ``features``
    numbers f, and one learned prototype w_k per class with

        logit_k = logaddexp(-||f - w_k||^2 / 2, log_floor)

    An input whose features lie far from every prototype gets every logit at the floor, so a
    near-uniform softmax: pixel noise is rejected (a class probability above 0.9 for under 1% of
    noise images; the same convolutions with a linear head passed 11-46%), while a real digit
    close to its prototype gets up to 1 / (1 + (K - 1) exp(log_floor)) (0.9996 for 10 classes at
    -10).
    The prototypes are the weight of a bias-free ``nn.Linear`` (``head``), so the input of the
    last linear layer, which the naturalness metrics take as Frechet features, is f. No batch
    statistics: a sample's logits never depend on its batch mates.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 10,
        width: int = 16,
        features: int = 64,
        dropout: float = 0.1,
        log_floor: float = -10.0,
    ) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2 or width < 1 or features < 1:
            raise ValueError(
                f"PrototypeClassifier needs in_channels >= 1, num_classes >= 2, width >= 1, features >= 1; got "
                f"in_channels={in_channels}, num_classes={num_classes}, width={width}, features={features}"
            )
        if image_size < 4 or image_size % 4:
            raise ValueError(
                f"PrototypeClassifier needs image_size divisible by 4 (two 2x2 poolings), got {image_size}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"PrototypeClassifier needs dropout in [0, 1), got {dropout}")
        if not math.isfinite(log_floor):
            raise ValueError(f"PrototypeClassifier needs a finite log_floor, got {log_floor}")
        self.input_shape = (in_channels, image_size, image_size)
        self.log_floor = float(log_floor)
        side = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * side * side, features),
        )
        self.head = nn.Linear(features, num_classes, bias=False)  # one prototype per class (its rows)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"PrototypeClassifier needs (B, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        f = self.body(x)
        squared = (f * f).sum(-1, keepdim=True) - 2.0 * self.head(f) + (self.head.weight**2).sum(-1)
        return torch.logaddexp(-0.5 * squared, torch.full_like(squared, self.log_floor))
