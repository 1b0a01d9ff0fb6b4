"""The decoder contract (tests/test_decoders.py) on a tiny Gaussian diffusion as well.

Every decoder that runs on masked diffusion runs here on a DDIM/DDPM model (eta = 1, a few
steps) over 1x8x8 images, with a simple differentiable reward (so DPS guides by the reward's
gradient through Tweedie's x0-hat) and an untrained image value network for SVDD-MC.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor

from svdd_lightning import ops
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.diffusion.gaussian import GaussianDiffusion
from svdd_lightning.networks.image_value import ImageValueNet
from svdd_lightning.rewards.base import Reward
from svdd_lightning.values.learned import LearnedValue
from tests.helpers import ddpm_alphas_cumprod, tiny_unet_denoiser
from tests.test_decoders import B, DecoderContract, make_decoder

EVENT = (1, 8, 8)
STEPS = 4


class Brightness(Reward):
    """Mean pixel value, minus a penalty for leaving [-1, 1]: differentiable, any image."""

    name: ClassVar[str] = "brightness"
    is_differentiable: ClassVar[bool] = True

    def forward(self, x0: Tensor) -> Tensor:
        x = x0.float().flatten(1)
        return x.mean(dim=1) - (x.abs() - 1).clamp(min=0).pow(2).mean(dim=1)


def tiny_gaussian(num_steps: int = STEPS, seed: int = 0) -> GaussianDiffusion:
    return GaussianDiffusion(network=tiny_unet_denoiser(seed=seed), event_shape=EVENT, num_steps=num_steps,
                             alphas_cumprod=ddpm_alphas_cumprod("linear"), timestep_input="index", eta=1.0,
                             clip_sample=1.0).eval()


def tiny_image_value(num_steps: int = STEPS, seed: int = 0) -> LearnedValue:
    torch.manual_seed(seed)
    return LearnedValue(network=ImageValueNet(in_channels=1, channels=8, time_dim=16), num_steps=num_steps).eval()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions gain nothing from intra-op threads (see test_gaussian_diffusion.py)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class TestGaussianDecoderContract(DecoderContract):
    """The decoder contract on Gaussian diffusion (DDIM eta = 1, 4 steps, 1x8x8 images)."""

    def make_diffusion(self):
        return tiny_gaussian()

    def make_reward(self):
        return Brightness()

    def make_learned_value(self, diffusion):
        return tiny_image_value(diffusion.num_steps)


# -- the reductions of tests/test_decoders.py, on Gaussian diffusion ------------------------------
def pretrained_samples(d, seed: int = 11) -> Tensor:
    return make_decoder("pretrained", d, reward=Brightness())(d, B, ops.make_generators(seed, range(B))).samples


@pytest.mark.parametrize("kind", ["svdd_pm", "svdd_mc", "best_of_n"])
def test_one_candidate_equals_pretrained(kind):
    d = tiny_gaussian()
    dec = make_decoder(kind, d, m=1, alpha=0.5, reward=Brightness(), learned_value=tiny_image_value())
    assert torch.equal(dec(d, B, ops.make_generators(11, range(B))).samples, pretrained_samples(d))


def test_dps_with_zero_scale_is_pretrained_sampling():
    d = tiny_gaussian()
    out = DPS(reward=Brightness(), guidance_scale=0.0)(d, B, ops.make_generators(11, range(B)))
    assert torch.equal(out.samples, pretrained_samples(d))
