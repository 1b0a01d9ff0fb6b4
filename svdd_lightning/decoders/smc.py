"""SMC (twisted sequential Monte Carlo): the batch is one population of particles.

Each particle moves with the pre-trained model (one proposal per particle and step) and gains
the incremental log-weight (v_{t-1}(x_{t-1}) - v_t(x_t)) / alpha, so the weights telescope to
(r(x_0) - v_T(x_T)) / alpha: the population targets p_pre(x) exp(r(x) / alpha). The last step
lands on clean objects, whose value is the reward itself (v_0 = r): the reward scores them. When
the effective sample size falls below ``ess_threshold`` times the population size, ancestors are
drawn by ``resampling`` (systematic or multinomial, pure functions in ``ops``) and the weights
reset. Weights stay in log space.

The returned samples are samples of SMC's target: a final resampling by the last normalised
weights draws the batch from the weighted population (equal weights afterwards, so medians and
histograms of the output are statistics of the target, not of unweighted particles).
``num_candidates`` = K particles per returned sample: the population holds B x K particles (one
pre-trained proposal each per step, the compute of Best-of-K) and the final resampling returns B.

The population is the decode batch, which the seed DataModule fixes from global indices, so
results do not depend on the number of devices; they do depend on ``batch_size``. With a
constant value no weight moves, nothing is resampled, and SMC with K = 1 is pre-trained sampling.
"""

from __future__ import annotations

from typing import Literal

import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import ValueFunction, score_states
from svdd_lightning.ranges import AtLeastOne, Positive, Probability


class SMC(Decoder):
    name = "smc"

    def __init__(self, *, reward: Reward, value: ValueFunction, alpha: Positive = 1.0, ess_threshold: Probability = 0.5,
                 resampling: Literal["systematic", "multinomial"] = "systematic", num_candidates: AtLeastOne = 1,
                 final_resampling: bool = True, dedup: bool = True) -> None:
        """``num_candidates``: particles per returned sample (the population is batch x K).
        ``final_resampling=False`` returns the weighted particles themselves with their final
        normalised log-weights in ``DecodeOutput.log_weights`` (K = 1 only), for weighted
        statistics; the default returns equally weighted samples of the target. ``dedup``: evaluate each
        distinct particle once (token models: particles start identical and resampling copies them)."""
        if value is None:
            raise ValueError("SMC needs a value (value=posterior_mean or value=learned) to weight its particles")
        self.keep_options(locals())
        if not final_resampling and num_candidates != 1:
            raise ValueError("final_resampling=false returns the weighted particles themselves, so it needs "
                             f"num_candidates=1 (one particle per sample), got {num_candidates}")
        self.reward = reward
        self.value = value

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        n = batch_size * self.num_candidates
        calls = CallLedger()
        resample = ops.RESAMPLING_SCHEMES[self.resampling]
        population_gen = ops.population_generator(generators)
        # Particles flattened as (B * K); particle k of sample b draws from sample b's generator.
        particle_gens = ops.repeat_generators(generators, self.num_candidates)
        # Seeds of an inpainting decode: particles resample only among designs of their own seed.
        x, groups = self.begin(diffusion, particle_gens, start, copies=self.num_candidates)
        distinct = self.deduplicates(diffusion)
        first_step = self.first_step(diffusion, start)
        scored = score_states(self.value, self.reward, diffusion, x, first_step, distinct=distinct)
        calls.ask_for_scores(self.value, first_step, n)
        previous, denoised = scored.values, scored.denoised
        log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
        ess_trace: list[torch.Tensor] = []
        resampled_steps = 0
        for t in self.steps(diffusion, start):
            if denoised is None:
                denoised = self.denoise(diffusion, x, t, calls)
            x = diffusion.propose(x, t, 1, particle_gens, denoised=denoised)[:, 0]
            # v_0 = r at the last step
            scored = score_states(self.value, self.reward, diffusion, x, t - 1, distinct=distinct)
            calls.ask_for_scores(self.value, t - 1, n)
            log_w = log_w + (scored.values - previous).double() / self.alpha
            previous, denoised = scored.values, scored.denoised
            ess = ops.effective_sample_size(log_w)
            ess_trace.append(ess / n)
            if t > 1 and ess < self.ess_threshold * n:  # one sync per step: the resampling decision
                ancestors = ops.resample_within_groups(resample, log_w, groups, groups, n, population_gen)
                x, previous = x[ancestors], previous[ancestors]
                denoised = None if denoised is None else denoised[ancestors]
                log_w = torch.zeros_like(log_w)
                resampled_steps += 1
        rewards = previous  # the reward of every clean particle, scored at the last step
        trace = {"ess_fraction": torch.stack(ess_trace).tolist()}
        if self.final_resampling:
            # Draw the batch from the weighted population: the output is then a sample of the target.
            slots = None if groups is None else groups[::self.num_candidates]
            ancestors = ops.resample_within_groups(resample, log_w, groups, slots, batch_size, population_gen)
            return self.finish(x[ancestors], rewards[ancestors], calls, trace, resampled_steps=resampled_steps)
        out = self.finish(x, rewards, calls, trace, resampled_steps=resampled_steps)
        out.log_weights = ops.log_normalize(log_w).float()
        return out
