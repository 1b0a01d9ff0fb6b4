"""Value-guided beam search (decoders/beam.py)."""

from __future__ import annotations

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.decoders.beam import BeamSearch
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import counted, gc_reward, tiny_masked, tiny_value

B = 6


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("value_kind", ["posterior_mean", "learned"])
def test_one_beam_is_svdd(alpha, value_kind):
    diffusion = tiny_masked(seq_len=12, num_steps=8)
    reward = gc_reward()
    value = (PosteriorMeanValue(reward=reward, diffusion=diffusion) if value_kind == "posterior_mean"
             else tiny_value(num_steps=8))
    svdd = counted(SVDD(reward=reward, value=value, num_candidates=4, alpha=alpha), diffusion, B,
                   ops.make_generators(3, range(B)))
    beam = counted(BeamSearch(reward=reward, value=value, beams=1, num_candidates=4, alpha=alpha), diffusion, B,
                   ops.make_generators(3, range(B)))
    assert torch.equal(beam.samples, svdd.samples)
    assert torch.equal(beam.rewards, svdd.rewards)
    assert beam.info["made"] == svdd.info["made"] and beam.info["asked"] == svdd.info["asked"]


def test_beams_score_a_times_k_children_and_return_the_best_path():
    diffusion = tiny_masked(seq_len=12, num_steps=8)
    reward = gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    out = BeamSearch(reward=reward, value=value, beams=3, num_candidates=2)(diffusion, B, ops.make_generators(0, range(B)))
    assert out.samples.shape == (B, 12) and bool((out.samples < 4).all())
    torch.testing.assert_close(out.rewards, reward(out.samples))
    # 7 noisy steps of A x K = 6 children per sample, then the final argmax step: one child per path (3).
    assert out.info["asked"]["reward"] == B * (7 * 6 + 3)
    # Same seed, same samples, whatever the batch holds.
    alone = BeamSearch(reward=reward, value=value, beams=3, num_candidates=2)(
        diffusion, 2, ops.make_generators(0, range(2)))
    assert torch.equal(alone.samples, out.samples[:2])


def test_beam_options_are_checked():
    reward = gc_reward()
    with pytest.raises(ValueError, match="beams"):
        BeamSearch(reward=reward, value=tiny_value(), beams=0)
    with pytest.raises(ValueError, match="alpha"):
        BeamSearch(reward=reward, value=tiny_value(), alpha=-1.0)
