"""Nested SMC (decoder=svdd_smc) reduces to the decoders it joins: with M = 1 it is SMC, and with no resampling it
is SVDD at the same alpha, tried at 0.5 and at 1e-6 (where SVDD's softmax selection is its argmax). Bitwise, because the same generators draw the same
proposals and selections in the same order, and the weights, which are the only new arithmetic, decide nothing
unless a resampling reads them (M = 1: the weight is computed as SMC's, (v_{t-1} - v_t) / alpha, plus log-sum-exp
over one term and - log 1, both exact)."""

from __future__ import annotations

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.decoders.svdd_smc import NestedSMC
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import gc_reward, tiny_masked, tiny_value

B = 6


def decode(decoder, diffusion, seed=0):
    return decoder(diffusion, B, ops.make_generators(seed, range(B)))


@pytest.mark.parametrize("ess_threshold", [0.5, 1.0])
def test_one_candidate_is_smc(ess_threshold):
    diffusion, reward = tiny_masked(), gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    ours = decode(NestedSMC(reward=reward, value=value, num_candidates=1, particles=3, alpha=0.05,
                            ess_threshold=ess_threshold), diffusion)
    smc = decode(SMC(reward=reward, value=value, num_candidates=3, alpha=0.05, ess_threshold=ess_threshold), diffusion)
    assert torch.equal(ours.samples, smc.samples) and torch.equal(ours.rewards, smc.rewards)
    assert ours.info["trace"]["ess_fraction"] == smc.info["trace"]["ess_fraction"]


@pytest.mark.parametrize("alpha", [0.5, 1e-6])
def test_without_resampling_it_is_svdd(alpha):
    diffusion, reward = tiny_masked(), gc_reward()
    value = tiny_value(diffusion.num_steps)  # a learned value: continuous, so no ties between candidates
    ours = decode(NestedSMC(reward=reward, value=value, num_candidates=4, alpha=alpha, ess_threshold=0.0,
                            final_resampling=False), diffusion)
    svdd = decode(SVDD(reward=reward, value=value, num_candidates=4, alpha=alpha), diffusion)
    assert torch.equal(ours.samples, svdd.samples) and torch.equal(ours.rewards, svdd.rewards)


def test_the_weights_move_with_m_and_resampling_changes_the_samples():
    diffusion, reward = tiny_masked(), gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    plain = decode(NestedSMC(reward=reward, value=value, num_candidates=4, alpha=0.05, ess_threshold=0.0,
                             final_resampling=False), diffusion)
    assert plain.log_weights is not None and not torch.allclose(plain.log_weights, plain.log_weights[:1].expand(B))
    resampled = decode(NestedSMC(reward=reward, value=value, num_candidates=4, alpha=0.05, ess_threshold=1.0),
                       diffusion)
    assert resampled.info["resampled_steps"] > 0


def test_alpha_must_be_positive_and_particles_one_without_final_resampling():
    diffusion, reward = tiny_masked(), gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    with pytest.raises(ValueError, match="alpha"):
        NestedSMC(reward=reward, value=value, alpha=0.0)
    with pytest.raises(ValueError, match="particles=1"):
        NestedSMC(reward=reward, value=value, particles=2, final_resampling=False)
