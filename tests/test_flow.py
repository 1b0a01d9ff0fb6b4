"""FlowDiffusion (svdd_lightning/diffusion/flow.py): its ODE is the FlowMatchEulerDiscreteScheduler's Euler step;
its stochastic steps keep the ODE's marginals (checked in distribution on an analytic Gaussian flow, with negative
controls); its transition density is the Gaussian it draws from; search decoders refuse a flow without noise."""

from __future__ import annotations

import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from svdd_lightning import ops  # noqa: E402
from svdd_lightning.diffusion.flow import FlowDiffusion, flow_schedule, from_diffusers  # noqa: E402
from svdd_lightning.errors import ConfigError  # noqa: E402


def tiny_unet(seed: int = 0):
    torch.manual_seed(seed)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4).eval()


@pytest.mark.parametrize("scheduler_options", [dict(shift=1.0), dict(shift=3.0),
                                               dict(use_dynamic_shifting=True, mu=0.7)])
def test_ode_steps_are_the_schedulers_euler_steps(scheduler_options):
    """stochasticity = 0: every decode step equals FlowMatchEulerDiscreteScheduler.step on the same velocity, and
    a wrong shift (the negative control) does not."""
    options = dict(scheduler_options)
    mu = options.pop("mu", None)
    unet = tiny_unet()
    ours = from_diffusers(unet, diffusers.FlowMatchEulerDiscreteScheduler(**options), num_inference_steps=7,
                          mu=mu).eval()
    theirs = diffusers.FlowMatchEulerDiscreteScheduler(**options)
    theirs.set_timesteps(7, mu=mu)
    generators = ops.make_generators(0, range(3))
    x = ours.prior(3, generators)
    y = x.clone()
    with torch.no_grad():
        for t in ours.timesteps():
            x = ours.propose(x, t, 1, generators)[:, 0]
        for timestep in theirs.timesteps:
            y = theirs.step(unet(y, timestep.expand(3)).sample, timestep, y).prev_sample
    # Same arithmetic up to float32 rounding (the velocity is recovered from x0-hat): measured 4.8e-7.
    assert (x - y).abs().max() < 1e-5
    wrong = from_diffusers(unet, diffusers.FlowMatchEulerDiscreteScheduler(**{**options, "shift": 2.0}),
                           num_inference_steps=7, mu=mu).eval()
    z = wrong.prior(3, ops.make_generators(0, range(3)))
    with torch.no_grad():
        for t in wrong.timesteps():
            z = wrong.propose(z, t, 1, generators)[:, 0]
    if not options.get("use_dynamic_shifting"):  # dynamic shifting ignores shift: mu sets the grid
        assert (z - y).abs().max() > 1e-3


def test_transition_log_prob_is_the_gaussian_the_step_draws_from():
    ours = from_diffusers(tiny_unet(), diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), num_inference_steps=5,
                          stochasticity=0.8, diffusion_coefficient="constant").eval()
    generators = ops.make_generators(1, range(2))
    x = ours.prior(2, generators)
    with torch.no_grad():
        denoised = ours.denoise(x, 4)
        mean, std = ours.transition(x, 4, denoised)
        candidates = ours.propose(x, 4, 3, generators, denoised=denoised)
        log_prob = ours.transition_log_prob(candidates, x, 4, denoised)
    expected = torch.distributions.Normal(mean.unsqueeze(1), std.view(2, 1, 1, 1, 1)).log_prob(candidates)
    assert log_prob.shape == (2, 3)
    assert torch.allclose(log_prob, expected.flatten(2).sum(-1), rtol=1e-5, atol=1e-3)
    sigma, sigma_next = ours.sigma_at[4], ours.sigma_at[3]
    assert torch.allclose(std, 0.8 * (sigma - sigma_next).sqrt().expand(2))  # g = 0.8 (constant)
    with pytest.raises(ValueError, match="final step"):
        ours.transition_log_prob(candidates[:, 0], x, 1)  # the last step is the ODE's: a point mass
    with pytest.raises(ValueError, match=r"t in \[1, num_steps=5\]"):
        ours.transition_log_prob(candidates[:, 0], x, torch.zeros(2, dtype=torch.long))


def test_a_grid_with_nan_is_refused():
    """diffusers' FlowMatchEulerDiscreteScheduler(shift_terminal=0.1) at one step gives sigmas [nan, 0]."""
    with pytest.raises(ValueError, match="sigmas must descend"):
        FlowDiffusion(network=GaussianVelocity(), event_shape=(2,), sigmas=[float("nan"), 0.5, 0.0])


# An analytic flow: data x_0 ~ N(M, S^2) per dimension, so the interpolant's marginal at sigma is
# N((1 - sigma) M, (1 - sigma)^2 S^2 + sigma^2) and the exact velocity E[eps - x_0 | x_sigma] is linear in x.
M, S = 1.5, 0.5


class GaussianVelocity(torch.nn.Module):
    def forward(self, x, time):
        sigma = (time / 1000).view(-1, *([1] * (x.dim() - 1)))
        variance = (1 - sigma) ** 2 * S**2 + sigma**2
        centred = x - (1 - sigma) * M
        return sigma / variance * centred - (M + (1 - sigma) * S**2 / variance * centred)


class NoScoreCorrection(FlowDiffusion):
    """The negative control: noise added to the ODE's step without the score term that keeps the marginals."""

    def transition(self, x_t, t, denoised):
        _, std = super().transition(x_t, t, denoised)
        time = self.as_time(t, x_t.shape[0])
        sigma, sigma_next = self.sigma_at[time].view(-1, 1), self.sigma_at[time - 1].view(-1, 1)
        return x_t + (sigma_next - sigma) * (x_t - denoised) / sigma, std


def marginals(cls, stochasticity, *, steps=50, samples=8192, dims=4):
    flow = cls(network=GaussianVelocity(), event_shape=(dims,), stochasticity=stochasticity,
               **flow_schedule(diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), steps))
    generators = ops.make_generators(0, range(samples))
    x = flow.prior(samples, generators)  # the same prior draws for every sampler
    moments = {}
    for t in range(steps, 0, -1):
        x = flow.propose(x, t, 1, generators)[:, 0]
        moments[t - 1] = (x.mean().item(), x.var().item())
    return moments


def test_stochastic_steps_keep_the_odes_marginals():
    """Mean and variance of 8,192 x 4 SDE samples after a few of 50 steps match the ODE's pushforward of the same
    prior draws. Tolerance: 4 Monte-Carlo standard errors (sqrt(var / n) for the mean, var sqrt(2 / n) for the
    variance) plus, for the variance, 0.005 of Euler-Maruyama bias: measured here, the SDE-ODE variance gap was
    0.010 at 20 steps and within noise at 200 (first order in the step), 0.0012-0.0042 at 50. The control without
    the score correction is off by 0.07-0.14."""
    ode, sde = marginals(FlowDiffusion, 0.0), marginals(FlowDiffusion, 1.0)
    no_score = marginals(NoScoreCorrection, 1.0)
    n = 8192 * 4
    for step in (40, 25, 10, 3):
        (ode_mean, ode_var), (sde_mean, sde_var) = ode[step], sde[step]
        assert abs(sde_mean - ode_mean) < 4 * math.sqrt(ode_var / n), step
        assert abs(sde_var - ode_var) < 4 * ode_var * math.sqrt(2 / n) + 0.005, step
        assert no_score[step][1] - ode_var > 0.05, step  # the test can fail: a wrong drift inflates the variance


def test_search_decoders_refuse_a_flow_without_noise():
    """stochasticity = 0: SVDD's M candidates would be one state, so the decoding module says so; Best-of-N is fine;
    SMC warns that resampled copies stay copies."""
    from svdd_lightning.decoders.best_of_n import BestOfN
    from svdd_lightning.decoders.smc import SMC
    from svdd_lightning.decoders.svdd import SVDD
    from svdd_lightning.modules.decoding import DecodingModule
    from svdd_lightning.values.posterior_mean import PosteriorMeanValue

    class Reward(torch.nn.Module):
        name = "sum"
        is_differentiable = True

        def forward(self, x):
            return x.flatten(1).sum(-1)

    reward = Reward()

    def module(make_decoder, stochasticity):
        flow = from_diffusers(tiny_unet(), diffusers.FlowMatchEulerDiscreteScheduler(), num_inference_steps=4,
                              stochasticity=stochasticity)
        decoder = make_decoder(PosteriorMeanValue(reward=reward, diffusion=flow))
        return DecodingModule(diffusion=flow, decoder=decoder, reward=reward, value=None, seed=0)

    def svdd(value):
        return SVDD(reward=reward, value=value, num_candidates=4)

    with pytest.raises(ConfigError, match=r"num_candidates=4.*diffusion.stochasticity"):
        module(svdd, 0.0)
    module(svdd, 1.0)  # with noise, fine
    module(lambda _: BestOfN(reward=reward, num_candidates=4), 0.0)  # samples differ through their prior draws
    with pytest.warns(UserWarning, match="resampled copies stay identical"):
        module(lambda value: SMC(reward=reward, value=value), 0.0)
