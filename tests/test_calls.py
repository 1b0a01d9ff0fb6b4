"""Calls are measured, and every decoder's declared budget is the README's cost formula ("Calls per sample").

Without deduplication every object asked for is sent, so the measured counts (svdd_lightning/calls.py's meter on
the denoiser, the value networks and the reward) must equal both the decoder's declared ``asked`` and the formula;
with it, fewer are made and ``asked`` does not move.
"""

from __future__ import annotations

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger, calls_record
from svdd_lightning.decoders.base import Decoder
from svdd_lightning.decoders.beam import BeamSearch
from svdd_lightning.decoders.best_of_n import BestOfN
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD, SVDDR
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import counted, gc_reward, tiny_masked, tiny_value

B, T, M, A, K = 3, 6, 4, 2, 2


def masked_formulas() -> dict[str, dict[str, int]]:
    """The README's table, per sample: T steps, M candidates (N chains, K particles), A beams x K children. On a
    masked model the final step (t = 1, the argmax) draws nothing, so one candidate is proposed there, not M."""
    last = 1
    return {
        "pretrained": {"denoiser": T, "value": 0, "reward": 1},
        "best_of_n": {"denoiser": M * T, "value": 0, "reward": M},
        "svdd_pm": {"denoiser": 1 + (T - 1) * M, "value": 0, "reward": (T - 1) * M + last},
        "svdd_r": {"denoiser": 1 + (T - 1) * M, "value": 0, "reward": (T - 1) * M + last},
        "svdd_mc": {"denoiser": T, "value": (T - 1) * M, "reward": last},
        "smc_pm": {"denoiser": T * K, "value": 0, "reward": (T + 1) * K},
        "smc_mc": {"denoiser": T * K, "value": T * K, "reward": K},
        "dps": {"denoiser": T, "value": 0, "reward": T},
        "dps_value": {"denoiser": T, "value": T - 1, "reward": 1},
        "beam": {"denoiser": A + (T - 1) * A * K, "value": 0, "reward": (T - 1) * A * K + A},
    }


def build(kind: str, diffusion) -> Decoder:
    reward = gc_reward()
    pm = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    learned = tiny_value(diffusion.num_steps)
    return {
        "pretrained": lambda: PretrainedSampler(reward=reward, dedup=False),
        "best_of_n": lambda: BestOfN(reward=reward, num_candidates=M, dedup=False),
        "svdd_pm": lambda: SVDD(reward=reward, value=pm, num_candidates=M, dedup=False),
        "svdd_r": lambda: SVDDR(reward=reward, value=pm, num_candidates=M, resample_fraction=0.4, dedup=False),
        "svdd_mc": lambda: SVDD(reward=reward, value=learned, num_candidates=M, dedup=False),
        "smc_pm": lambda: SMC(reward=reward, value=pm, alpha=0.05, num_candidates=K, dedup=False),
        "smc_mc": lambda: SMC(reward=reward, value=learned, alpha=0.05, num_candidates=K, dedup=False),
        "dps": lambda: DPS(reward=reward, guidance_scale=1.0),
        "dps_value": lambda: DPS(reward=type("NoGradient", (type(reward),), {"is_differentiable": False})(),
                                 value=learned, guidance_scale=1.0),
        "beam": lambda: BeamSearch(reward=reward, value=pm, beams=A, num_candidates=K, dedup=False),
    }[kind]()


@pytest.mark.parametrize("kind", sorted(masked_formulas()))
def test_measured_calls_are_the_declared_budget_and_the_readme_formula(kind):
    diffusion = tiny_masked(num_steps=T)
    out = counted(build(kind, diffusion), diffusion, B, ops.make_generators(0, range(B)))
    expected = {k: B * v for k, v in masked_formulas()[kind].items()}
    assert out.info["made"] == expected, "measured"
    assert out.info["asked"] == expected, "declared"


@pytest.mark.parametrize("kind", ["svdd_pm", "beam", "smc_pm", "best_of_n"])
def test_deduplication_makes_fewer_calls_than_it_asks_for(kind):
    diffusion = tiny_masked(seq_len=12, num_steps=T)
    decoder = build(kind, diffusion)
    decoder.dedup = True
    out = counted(decoder, diffusion, B, ops.make_generators(0, range(B)))
    assert out.info["asked"] == {k: B * v for k, v in masked_formulas()[kind].items()}
    assert out.info["made"]["denoiser"] < out.info["asked"]["denoiser"]  # the all-mask prior rows are one object


def test_the_formula_holds_on_a_gaussian_model():
    """DDPM with eta = 1: the step to t = 0 lands on x0-hat (sigma = 0) and draws nothing, as a masked model's
    final argmax step, so SVDD proposes one candidate there too."""
    from tests.test_decoders_gaussian import Brightness, tiny_gaussian

    diffusion = tiny_gaussian(num_steps=T)
    reward = Brightness()
    decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=M)
    out = counted(decoder, diffusion, B, ops.make_generators(0, range(B)))
    assert diffusion.is_deterministic_step(1) and not diffusion.is_deterministic_step(2)
    expected = {k: B * v for k, v in masked_formulas()["svdd_pm"].items()}
    assert out.info["made"] == out.info["asked"] == expected


class ForgetfulDecoder(Decoder):
    """A decoder that declares nothing: its calls are counted all the same."""

    name = "forgetful"

    def __init__(self, *, reward) -> None:
        self.reward = reward

    @torch.no_grad()
    def __call__(self, diffusion, batch_size, generators, start=None):
        x, _ = self.begin(diffusion, generators, start)
        for t in self.steps(diffusion, start):
            x = diffusion.step(x, t, generators).prev_sample
        return self.finish(x, self.reward(x), CallLedger())


def test_a_decoder_that_declares_nothing_still_has_its_calls_measured():
    diffusion = tiny_masked(num_steps=T)
    out = counted(ForgetfulDecoder(reward=gc_reward()), diffusion, B, ops.make_generators(0, range(B)))
    assert out.info["made"] == {"denoiser": B * T, "value": 0, "reward": B}
    assert out.info["asked"] == {"denoiser": 0, "value": 0, "reward": 0}


def test_the_calls_record_per_sample_and_in_all():
    record = calls_record({"denoiser": 30, "value": 0, "reward": 6}, {"denoiser": 60, "value": 0, "reward": 6}, 3)
    assert record["per_sample"]["made"] == {"denoiser": 10.0, "value": 0.0, "reward": 2.0, "total": 12.0}
    assert record["asked"] == {"denoiser": 60, "value": 0, "reward": 6, "total": 66}


@pytest.mark.parametrize("mode", ["sample", "search"])
def test_the_tree_spends_its_budget_in_calls_and_one_reward_call_per_rollout(mode):
    """decoder=tree's budget: at most M x T denoiser calls per tree, expansions and rollouts together, and a tree
    stops only when its next expansion (at most T calls) would not fit; one reward call per node made (a rollout)."""
    from svdd_lightning.decoders.tree import TreeSearch

    diffusion = tiny_masked(num_steps=T)
    decoder = TreeSearch(reward=gc_reward(), num_candidates=M, alpha=0.05, mode=mode, dedup=False)
    out = counted(decoder, diffusion, B, ops.make_generators(0, range(B)))
    assert out.info["made"] == out.info["asked"]
    rollouts = sum(n - 1 for n in out.info["nodes"])
    assert out.info["asked"]["reward"] == rollouts > B
    assert B * (M * T - T) < out.info["asked"]["denoiser"] <= B * M * T


def test_a_one_rollout_tree_costs_what_the_pretrained_sampler_does():
    """With M = 1 the budget is T calls: one rollout from the root, as plain sampling."""
    from svdd_lightning.decoders.tree import TreeSearch

    diffusion = tiny_masked(num_steps=T)
    out = counted(TreeSearch(reward=gc_reward(), num_candidates=1, dedup=False), diffusion, B,
                  ops.make_generators(0, range(B)))
    assert out.info["asked"] == out.info["made"] == {"denoiser": B * T, "value": 0, "reward": B}
