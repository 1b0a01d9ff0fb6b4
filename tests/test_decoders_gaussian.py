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
from tests.helpers import TEST_THREADS, ddpm_alphas_cumprod, tiny_unet_denoiser
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
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(previous)


# README "Determinism": on Gaussian (and latent) models a sample is a function of (seed, index) up to float
# rounding. A convolution's rounding may depend on the batch it runs in (measured on an AMD EPYC, not on the
# Xeon the suite was written on), so the same sample decoded in another batch, on another CPU or a GPU agrees
# within SAMPLE_ATOL (data units; images are in [-1, 1]). Measured: network outputs perturbed by 1e-6 relative
# at every call move these decoders' samples by at most 1.3e-5 (1e-5 relative: 1.3e-4), see
# test_rounding_in_the_network_moves_samples_within_the_tolerance. A candidate selection (SVDD, Best-of-N, beam
# search) on a near-tie of values closer than the rounding may pick another candidate: then that sample differs.
SAMPLE_ATOL = 1e-4
ROUNDING = 1e-6  # relative size of the rounding differences the tolerance covers


class TestGaussianDecoderContract(DecoderContract):
    """The decoder contract on Gaussian diffusion (DDIM eta = 1, 4 steps, 1x8x8 images)."""

    def assert_same_samples(self, a, b) -> None:
        torch.testing.assert_close(a, b, atol=SAMPLE_ATOL, rtol=0)

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


def perturbed_outputs(network: torch.nn.Module, relative: float, seed: int = 0):
    """A forward hook that multiplies every output of ``network`` by (1 + relative * N(0, 1)): rounding of that
    relative size, as another CPU's kernels (or another batch) would produce. Returns the hook's handle."""
    gen = torch.Generator().manual_seed(seed)

    def hook(module, inputs, output):
        return output * (1 + relative * torch.randn(output.shape, generator=gen))

    return network.register_forward_hook(hook)


@pytest.mark.parametrize("kind", ["pretrained", "best_of_n", "svdd_pm", "svdd_mc", "smc", "svdd_r", "dps", "beam"])
def test_rounding_in_the_network_moves_samples_within_the_tolerance(kind):
    """What SAMPLE_ATOL promises, on any machine: rounding differences of ROUNDING (relative) in every denoiser call
    keep every sample within SAMPLE_ATOL; and the check can fail: differences of 1e-2 move them further."""
    d = tiny_gaussian()
    dec = make_decoder(kind, d, reward=Brightness(), learned_value=tiny_image_value())
    reference = dec(d, B, ops.make_generators(3, range(B))).samples
    moved = {}
    for relative in (ROUNDING, 1e-2):
        handle = perturbed_outputs(d.network, relative)
        try:
            moved[relative] = (dec(d, B, ops.make_generators(3, range(B))).samples - reference).abs().max().item()
        finally:
            handle.remove()
    assert moved[ROUNDING] <= SAMPLE_ATOL, moved
    assert moved[1e-2] > SAMPLE_ATOL, moved
