"""SMC, SVDD-R and DPS: contracts, reductions under one seed, resampling schemes."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from svdd_lightning.predictions import IndexBatchDataset
from svdd_lightning import ops
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD, SVDDR
from svdd_lightning.rewards.rna import MFEReward
from svdd_lightning.values.base import ValueFunction
from svdd_lightning.values.learned import LearnedValue
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import image_domain, molecule_domain, on_domain, rna_domain  # noqa: F401
from tests.helpers import counted, gc_reward, tiny_masked, tiny_value

B = 8


class ConstantValue(ValueFunction):
    def forward(self, x_t, t):
        return torch.full((x_t.shape[0],), 0.7)


def gens(seed=11, n=B):
    return ops.make_generators(seed, range(n))


def pretrained(d, seed=11, n=B):
    return PretrainedSampler(reward=gc_reward())(d, n, gens(seed, n))


# -- resampling schemes -------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", sorted(ops.RESAMPLING_SCHEMES))
def test_resampling_follows_the_weights(scheme):
    resample = ops.RESAMPLING_SCHEMES[scheme]
    logw = torch.log(torch.tensor([0.7, 0.0, 0.2, 0.1]))
    idx = resample(logw, 4000, torch.Generator().manual_seed(0))
    freq = torch.bincount(idx, minlength=4).float() / 4000
    assert freq[1] == 0
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.0, 0.2, 0.1]), atol=0.03, rtol=0)


def test_systematic_resampling_of_uniform_weights_keeps_every_particle():
    idx = ops.systematic_resample(torch.zeros(10), 10, torch.Generator().manual_seed(3))
    assert torch.equal(idx, torch.arange(10))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=1, max_size=20), st.integers(1, 30), st.integers(0, 2**31))
def test_resampling_returns_valid_ancestors(logw, num, seed):
    logw = torch.tensor(logw, dtype=torch.float64)
    for resample in ops.RESAMPLING_SCHEMES.values():
        idx = resample(logw, num, torch.Generator().manual_seed(seed))
        assert idx.shape == (num,) and idx.min() >= 0 and idx.max() < logw.numel()


def test_population_generator_draws_nothing_from_the_members():
    g = gens()
    ops.population_generator(g)
    ref = gens()
    assert all(torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b)) for a, b in zip(g, ref))


def test_seed_batches_are_fixed_runs_of_global_indices():
    data = IndexBatchDataset(num_samples=10, batch_size=4)
    assert len(data) == 3
    assert [data[k].tolist() for k in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# -- SMC ---------------------------------------------------------------------------------------
class ConstantReward(type(gc_reward())):
    def forward(self, x0):
        return torch.full((x0.shape[0],), 0.7)


def test_smc_with_a_constant_value_and_reward_is_pretrained_sampling():
    d = tiny_masked()
    out = SMC(reward=ConstantReward(), value=ConstantValue(), alpha=0.1)(d, B, gens())
    assert torch.equal(out.samples, pretrained(d).samples)
    assert out.info["resampled_steps"] == 0
    assert out.info["trace"]["ess_fraction"] == pytest.approx([1.0] * d.num_steps)


def test_smc_weights_its_particles_by_the_reward_at_the_last_step():
    """v_0 = r: with a constant value the only weight is the last, exp((r - v) / alpha); kept as
    weights (final_resampling=false) the particles are pre-trained samples with those weights."""
    d = tiny_masked()
    reward, alpha = gc_reward(), 0.1
    out = SMC(reward=reward, value=ConstantValue(), alpha=alpha, final_resampling=False)(d, B, gens())
    plain = pretrained(d)
    assert torch.equal(out.samples, plain.samples)
    expected = ops.log_normalize((reward(plain.samples).double() - 0.7) / alpha).float()
    torch.testing.assert_close(out.log_weights, expected)


def test_smc_returns_samples_of_its_target_by_a_final_resampling():
    d = tiny_masked()
    reward = gc_reward()
    out = SMC(reward=reward, value=ConstantValue(), alpha=0.02)(d, B, gens())
    plain = pretrained(d)
    rows = {tuple(r) for r in plain.samples.tolist()}
    assert all(tuple(r) in rows for r in out.samples.tolist())  # drawn from the particles
    assert torch.equal(out.log_weights, torch.zeros(B))  # equally weighted
    assert out.rewards.mean() >= plain.rewards.mean()
    torch.testing.assert_close(out.rewards, reward(out.samples))


def test_smc_with_k_particles_per_sample():
    d = tiny_masked()
    reward = gc_reward()
    value = tiny_value(d.num_steps)
    out = counted(SMC(reward=reward, value=value, alpha=0.5, num_candidates=3), d, B, gens())
    assert out.samples.shape == (B, *d.event_shape)
    n = out.info["asked"]
    assert out.info["made"]["value"] <= n["value"] and out.info["made"]["denoiser"] <= n["denoiser"]
    assert n["denoiser"] == B * 3 * d.num_steps
    # The learned value reads t = T .. 1 (T + 0 .. T - 1 steps); the reward scores the clean particles.
    assert n["value"] == B * 3 * d.num_steps and n["reward"] == B * 3


def test_smc_resamples_and_raises_reward_with_a_sharp_value():
    d = tiny_masked(seq_len=16, num_steps=8)
    reward = gc_reward()
    n = 64
    out = SMC(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=d), alpha=0.01)(d, n, gens(5, n))
    assert out.info["resampled_steps"] > 0
    assert out.rewards.median() > pretrained(d, 5, n).rewards.median()
    weighted = SMC(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=d), alpha=0.01,
                   final_resampling=False)(d, n, gens(5, n))
    assert torch.isfinite(weighted.log_weights).all()
    torch.testing.assert_close(weighted.log_weights.exp().sum(), torch.tensor(1.0))


def test_smc_is_deterministic_per_batch():
    d = tiny_masked()
    reward = gc_reward()
    dec = SMC(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=d), alpha=0.01, resampling="multinomial")
    assert torch.equal(dec(d, B, gens()).samples, dec(d, B, gens()).samples)


@pytest.mark.parametrize("kwargs, match", [({"alpha": 0.0}, "alpha"), ({"ess_threshold": 1.5}, "ess_threshold"),
                                            ({"resampling": "stratified"}, "resampling"),
                                            ({"num_candidates": 0}, "num_candidates"),
                                            ({"num_candidates": 2, "final_resampling": False}, "final_resampling")])
def test_smc_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SMC(reward=gc_reward(), value=ConstantValue(), **kwargs)


# -- SVDD-R ------------------------------------------------------------------------------------
def test_svdd_r_with_zero_fraction_is_svdd():
    d = tiny_masked()
    reward = gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=d)
    svdd = SVDD(reward=reward, value=value, num_candidates=3)(d, B, gens())
    svdd_r = SVDDR(reward=reward, value=value, num_candidates=3, resample_fraction=0.0, resample_alpha=0.5)(d, B, gens())
    assert torch.equal(svdd.samples, svdd_r.samples)


@pytest.mark.parametrize("resample_alpha", [0.0, 0.05])
def test_svdd_r_moves_low_value_members(resample_alpha):
    d = tiny_masked(seq_len=16, num_steps=8)
    reward = gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=d)
    n = 32
    svdd = SVDD(reward=reward, value=value, num_candidates=2)(d, n, gens(5, n))
    svdd_r = SVDDR(reward=reward, value=value, num_candidates=2, resample_fraction=0.25,
                   resample_alpha=resample_alpha)(d, n, gens(5, n))
    assert not torch.equal(svdd.samples, svdd_r.samples)
    assert svdd_r.rewards.mean() >= svdd.rewards.mean()


def test_svdd_r_rejects_bad_fraction():
    with pytest.raises(ValueError, match="resample_fraction"):
        SVDDR(reward=gc_reward(), value=ConstantValue(), resample_fraction=1.5)


# -- DPS ---------------------------------------------------------------------------------------
def test_dps_with_zero_scale_is_pretrained_sampling():
    d = tiny_masked()
    out = counted(DPS(reward=gc_reward(), guidance_scale=0.0), d, B, gens())
    assert torch.equal(out.samples, pretrained(d).samples)
    assert out.info["made"]["denoiser"] == out.info["asked"]["denoiser"] == B * d.num_steps


def test_dps_follows_a_differentiable_reward():
    d = tiny_masked(seq_len=16, num_steps=8)
    n = 32
    out = DPS(reward=gc_reward(), guidance_scale=3.0)(d, n, gens(5, n))
    assert "reward gradient" in DPS(reward=gc_reward()).settings()["guided_by"]
    assert out.rewards.median() > pretrained(d, 5, n).rewards.quantile(0.9)


def test_dps_guides_with_the_learned_value_when_the_reward_has_no_gradient():
    d = tiny_masked()
    dec = DPS(reward=on_domain(MFEReward(), rna_domain()), value=tiny_value(d.num_steps), guidance_scale=1.0)
    assert "value" in dec.settings()["guided_by"]
    out = counted(dec, d, B, gens())
    # the final, noise-free step is unguided
    assert out.info["made"]["value"] == out.info["asked"]["value"] == B * (d.num_steps - 1)
    assert not torch.equal(out.samples, pretrained(d).samples)


class RecordingValue(LearnedValue):
    """A learned value that records the steps it is read at."""

    def forward(self, x_t, t):
        self.times.extend(t.tolist())
        return super().forward(x_t, t)


def test_dps_leaves_the_final_step_unguided():
    d = tiny_masked()
    value = RecordingValue(network=tiny_value(d.num_steps).network, num_steps=d.num_steps)
    value.times = []
    n = counted(DPS(reward=on_domain(MFEReward(), rna_domain()), value=value, guidance_scale=50.0), d, B,
                gens()).info["made"]
    assert n["value"] == B * (d.num_steps - 1) and n["denoiser"] == B * d.num_steps
    assert 0 not in value.times  # never read at t = 0, where v_0 = r


def test_dps_refuses_to_run_without_any_gradient():
    with pytest.raises(ValueError, match="not differentiable"):
        DPS(reward=on_domain(MFEReward(), rna_domain()), value=None)


def test_svdd_r_replaces_a_random_fraction_by_default_and_lowest_on_request():
    d = tiny_masked(seq_len=16, num_steps=8)
    reward = gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=d)
    n = 32
    run = lambda **kw: SVDDR(reward=reward, value=value, num_candidates=2, resample_fraction=0.25,  # noqa: E731
                             resample_alpha=0.05, **kw)(d, n, gens(5, n))
    assert SVDDR(reward=reward, value=value).settings()["replace"] == "random"
    assert torch.equal(run().samples, run(replace="random").samples)
    assert not torch.equal(run().samples, run(replace="lowest").samples)
    with pytest.raises(ValueError, match="replace"):
        SVDDR(reward=reward, value=value, replace="worst")
