"""SMC (twisted sequential Monte Carlo): the batch is one population of particles.

Each particle moves with the pre-trained model (one proposal per particle and step) and gains
the incremental log-weight (v_{t-1}(x_{t-1}) - v_t(x_t)) / alpha, so the weights telescope to
(r(x_0) - v_T(x_T)) / alpha: the population targets p_pre(x) exp(r(x) / alpha). When the
effective sample size falls below ``ess_threshold`` times the population size, ancestors are
drawn by ``resampling`` (systematic or multinomial, pure functions in ``ops``) and the weights
reset. Weights stay in log space; the output carries each particle's final normalised
log-weight.

The population is the decode batch, which the seed DataModule fixes from global indices, so
results do not depend on the number of devices; they do depend on ``batch_size``. With a
constant value no weight moves, nothing is resampled, and SMC is pre-trained sampling.
"""

from __future__ import annotations

from typing import Literal

import torch

from svdd_lightning import ops
from svdd_lightning.decoders.base import CallCounter, Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward
from svdd_lightning.values.base import ValueFunction


class SMC(Decoder):
    name = "smc"

    def __init__(self, *, reward: Reward, value: ValueFunction, alpha: float = 1.0, ess_threshold: float = 0.5,
                 resampling: Literal["systematic", "multinomial"] = "systematic", num_candidates: int = 1) -> None:
        # num_candidates is accepted (one proposal per particle) so sweeps can include SMC unchanged.
        if value is None:
            raise ValueError("SMC needs a value (value=posterior_mean or value=learned) to weight its particles")
        if not alpha > 0:
            raise ValueError(f"SMC's alpha must be > 0 (weights are exp(dv / alpha)), got {alpha}")
        if not 0.0 <= ess_threshold <= 1.0:
            raise ValueError(f"ess_threshold is a fraction of the population in [0, 1], got {ess_threshold}")
        if resampling not in ops.RESAMPLING_SCHEMES:
            raise ValueError(f"resampling={resampling!r} is unknown; use one of {sorted(ops.RESAMPLING_SCHEMES)}")
        self.reward = reward
        self.value = value
        self.alpha = alpha
        self.ess_threshold = ess_threshold
        self.resampling = resampling

    def settings(self) -> dict:
        return {"num_candidates": 1, "alpha": self.alpha, "ess_threshold": self.ess_threshold,
                "resampling": self.resampling, "value": type(self.value).__name__}

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        n = batch_size
        calls = CallCounter()
        resample = ops.RESAMPLING_SCHEMES[self.resampling]
        population_gen = ops.population_generator(generators)
        x = diffusion.prior(n, generators)
        scored = self.value.evaluate(diffusion, x, diffusion.num_steps)
        calls.denoiser += scored.denoiser_calls
        calls.value += scored.value_calls
        calls.reward += scored.reward_calls
        previous, denoised = scored.values, scored.denoised
        log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
        ess_trace: list[torch.Tensor] = []
        resampled_steps = 0
        for t in self.steps(diffusion):
            if denoised is None:
                denoised = diffusion.denoise(x, t)
                calls.denoiser += n
            x = diffusion.propose(x, t, 1, generators, denoised=denoised)[:, 0]
            scored = self.value.evaluate(diffusion, x, t - 1)
            calls.denoiser += scored.denoiser_calls
            calls.value += scored.value_calls
            calls.reward += scored.reward_calls
            log_w = log_w + (scored.values - previous).double() / self.alpha
            previous, denoised = scored.values, scored.denoised
            ess = ops.effective_sample_size(log_w)
            ess_trace.append(ess / n)
            if ess < self.ess_threshold * n:  # one sync per step: the resampling decision
                ancestors = resample(log_w, n, population_gen)
                x, previous = x[ancestors], previous[ancestors]
                denoised = None if denoised is None else denoised[ancestors]
                log_w = torch.zeros_like(log_w)
                resampled_steps += 1
        rewards = self.reward(x)
        calls.reward += n
        trace = {"ess_fraction": torch.stack(ess_trace).tolist()}
        out = self.finish(x, rewards, calls, trace, resampled_steps=resampled_steps)
        out.log_weights = ops.log_normalize(log_w).float()
        return out
