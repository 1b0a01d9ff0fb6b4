"""Decoder contract and the equivalences of DESIGN.md under one seed."""

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.decoders.beam import BeamSearch
from svdd_lightning.decoders.base import DecodeOutput
from svdd_lightning.decoders.best_of_n import BestOfN
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD, SVDDR
from svdd_lightning.decoders.svdd_smc import NestedSMC
from svdd_lightning.decoders.tree import TreeSearch
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from svdd_lightning.calls import CallMeter
from tests.helpers import counted, gc_reward, tiny_masked, tiny_value

B = 4


def make_decoder(kind: str, diffusion, m: int = 3, alpha: float = 0.0, reward=None, learned_value=None):
    """A decoder of ``kind`` on ``diffusion``; the reward (default: GC content) and SVDD-MC's
    learned value (default: the tiny sequence value) can be swapped for other domains."""
    reward = gc_reward() if reward is None else reward
    if kind == "pretrained":
        return PretrainedSampler(reward=reward)
    if kind == "best_of_n":
        return BestOfN(reward=reward, num_candidates=m)
    if kind == "svdd_pm":
        return SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m,
                    alpha=alpha)
    if kind == "svdd_mc":
        value = tiny_value(diffusion.num_steps) if learned_value is None else learned_value
        return SVDD(reward=reward, value=value, num_candidates=m, alpha=alpha)
    if kind == "smc":
        return SMC(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), alpha=0.05)
    if kind == "svdd_smc":
        return NestedSMC(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m,
                         particles=2, alpha=0.05)
    if kind in ("tree", "tree_search"):
        return TreeSearch(reward=reward, num_candidates=m, alpha=0.05,
                          mode="search" if kind == "tree_search" else "sample")
    if kind == "svdd_r":
        return SVDDR(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m,
                     resample_fraction=0.25)
    if kind == "dps":
        return DPS(reward=reward, guidance_scale=1.0)
    if kind == "beam":
        return BeamSearch(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), beams=2,
                          num_candidates=max(1, m // 2), alpha=alpha)
    raise AssertionError(kind)


KINDS = ["pretrained", "best_of_n", "svdd_pm", "svdd_mc", "smc", "svdd_r", "dps", "beam", "svdd_smc", "tree", "tree_search"]
# Their batch members interact (the batch is a population), so a sample depends on its batch.
POPULATION_KINDS = {"smc", "svdd_r", "svdd_smc"}


class DecoderContract:
    """Every decoder of KINDS on one diffusion. A subclass (one per diffusion) provides
    ``make_diffusion``, ``make_reward`` and ``make_learned_value`` (SVDD-MC's value)."""

    def make_diffusion(self):  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def make_reward(self):  # pragma: no cover
        raise NotImplementedError

    def make_learned_value(self, diffusion):  # pragma: no cover
        raise NotImplementedError

    def build(self, kind: str):
        d = self.make_diffusion()
        return d, make_decoder(kind, d, reward=self.make_reward(), learned_value=self.make_learned_value(d))

    @pytest.fixture(params=KINDS)
    def setup(self, request):
        return self.build(request.param)

    @pytest.fixture(params=sorted(set(KINDS) - POPULATION_KINDS))
    def independent(self, request):
        return self.build(request.param)

    def test_output_types_and_shapes(self, setup):
        d, dec = setup
        out = counted(dec, d, B, ops.make_generators(0, range(B)))
        assert isinstance(out, DecodeOutput)
        assert out.samples.shape == (B, *d.event_shape)
        assert out.rewards.shape == (B,) and out.log_weights.shape == (B,)
        assert set(out.info["made"]) == set(out.info["asked"]) == {"denoiser", "value", "reward"}
        assert out.info["made"]["denoiser"] > 0 and out.info["made"]["reward"] >= B
        assert all(out.info["made"][k] <= out.info["asked"][k] for k in out.info["made"])

    def test_rewards_are_rewards_of_samples(self, setup):
        d, dec = setup
        out = dec(d, B, ops.make_generators(0, range(B)))
        torch.testing.assert_close(out.rewards, self.make_reward()(out.samples))

    def test_deterministic_and_stateless(self, setup):
        d, dec = setup
        a = dec(d, B, ops.make_generators(3, range(B)))
        b = dec(d, B, ops.make_generators(3, range(B)))
        assert torch.equal(a.samples, b.samples)

    def assert_same_samples(self, a, b) -> None:
        """Token models: bitwise (README "Determinism": every network call comes in whole blocks of rows, so a
        row's logits do not depend on the other rows of its call, and the draws are per-sample generators')."""
        assert torch.equal(a, b)

    def test_samples_depend_on_index_not_batch(self, independent):
        d, dec = independent
        full = dec(d, B, ops.make_generators(3, range(B)))
        tail = dec(d, 2, ops.make_generators(3, [2, 3]))
        self.assert_same_samples(full.samples[2:], tail.samples)

    def test_wrong_generator_count_raises(self, setup):
        d, dec = setup
        with pytest.raises(ValueError, match="one generator per sample"):
            dec(d, B, ops.make_generators(0, range(B - 1)))


class TestDecoderContract(DecoderContract):
    """The decoder contract on masked diffusion (GC-content reward)."""

    def make_diffusion(self):
        return tiny_masked()

    def make_reward(self):
        return gc_reward()

    def make_learned_value(self, diffusion):
        return tiny_value(diffusion.num_steps)


@pytest.mark.parametrize("kind", ["svdd_pm", "svdd_mc"])
def test_svdd_with_one_candidate_equals_pretrained(kind):
    d = tiny_masked()
    ref = make_decoder("pretrained", d)(d, B, ops.make_generators(11, range(B)))
    out = make_decoder(kind, d, m=1, alpha=0.5)(d, B, ops.make_generators(11, range(B)))
    assert torch.equal(ref.samples, out.samples)


def test_best_of_one_equals_pretrained():
    d = tiny_masked()
    ref = make_decoder("pretrained", d)(d, B, ops.make_generators(11, range(B)))
    out = make_decoder("best_of_n", d, m=1)(d, B, ops.make_generators(11, range(B)))
    assert torch.equal(ref.samples, out.samples)


def test_posterior_mean_value_at_t0_equals_reward():
    d = tiny_masked()
    reward = gc_reward()
    x0 = torch.randint(0, 4, (B, 12))
    value = PosteriorMeanValue(reward=reward, diffusion=d)
    meter = CallMeter()
    with meter.attached(diffusion=d, value=value, reward=reward):
        out = value.evaluate(d, x0, 0)
    torch.testing.assert_close(out.values, reward(x0))
    assert meter.made == {"denoiser": 0, "value": 0, "reward": B}


def test_posterior_mean_value_is_reward_of_argmax_denoising():
    d = tiny_masked()
    reward = gc_reward()
    x0 = torch.randint(0, 4, (B, 12))
    xt = d.add_noise(x0, 3, ops.make_generators(0, range(B)))
    with torch.no_grad():
        v = PosteriorMeanValue(reward=reward, diffusion=d).evaluate(d, xt, 3).values
        expected = reward(d.denoise(xt, 3).argmax(-1))
    torch.testing.assert_close(v, expected)


def test_svdd_pm_spends_m_denoiser_calls_per_step():
    d = tiny_masked(num_steps=6)
    m = 3
    out = counted(make_decoder("svdd_pm", d, m=m), d, B, ops.make_generators(0, range(B)))
    # one initial call, M per step except the last (its candidates are clean: value = reward); the calls made
    # are fewer where candidates repeat (deduplication)
    assert out.info["made"]["denoiser"] <= out.info["asked"]["denoiser"]
    assert out.info["asked"]["denoiser"] == B * (1 + (d.num_steps - 1) * m)


def test_best_of_n_matches_svdd_pm_denoiser_budget_per_step():
    d = tiny_masked(num_steps=6)
    out = make_decoder("best_of_n", d, m=3)(d, B, ops.make_generators(0, range(B)))
    assert out.info["asked"]["denoiser"] == B * 3 * d.num_steps


def test_svdd_pm_increases_reward_over_pretrained():
    d = tiny_masked(seq_len=16, num_steps=8)
    gens = lambda: ops.make_generators(5, range(32))  # noqa: E731
    pre = make_decoder("pretrained", d)(d, 32, gens())
    svdd = make_decoder("svdd_pm", d, m=8)(d, 32, gens())
    assert svdd.rewards.median() > pre.rewards.quantile(0.9)


def test_select_candidates_alpha_zero_is_argmax_and_large_alpha_is_spread():
    values = torch.tensor([[0.0, 1.0, 0.5]]).repeat(400, 1)
    gens = ops.make_generators(0, range(400))
    assert (ops.select_candidates(values, 0.0, gens) == 1).all()
    picks = ops.select_candidates(values, 100.0, gens)
    counts = torch.bincount(picks, minlength=3).float() / 400
    assert (counts > 0.25).all()
    with pytest.raises(ValueError):
        ops.select_candidates(values, -1.0, gens)


def test_last_step_scores_clean_candidates_once_with_the_reward():
    """v_0 = r: the learned value is never read at t = 0 (its rollouts hold t = T..1), and the final
    step's M identical candidates (the argmax step) are proposed and scored once."""
    from svdd_lightning.values.learned import LearnedValue

    class RecordingValue(LearnedValue):
        def forward(self, x_t, t):
            self.times.extend(t.tolist())
            return super().forward(x_t, t)

    d = tiny_masked()
    m = 3
    value = RecordingValue(network=tiny_value(d.num_steps).network, num_steps=d.num_steps)
    value.times = []
    out = SVDD(reward=gc_reward(), value=value, num_candidates=m)(d, B, ops.make_generators(0, range(B)))
    assert 0 not in value.times and min(value.times) == 1
    assert out.info["asked"] == {"denoiser": B * d.num_steps, "value": B * m * (d.num_steps - 1), "reward": B}
    pm = SVDD(reward=gc_reward(), value=PosteriorMeanValue(reward=gc_reward(), diffusion=d), num_candidates=m)
    calls = pm(d, B, ops.make_generators(0, range(B))).info["asked"]
    assert calls["reward"] == B * ((d.num_steps - 1) * m + 1)
