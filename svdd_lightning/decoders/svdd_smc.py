"""SVDD made exact: nested SMC (Naesseth et al. 2015) with SVDD's proposal.

SVDD alone is biased at finite M: keeping one of M pre-trained candidates by softmax(v / alpha) samples the tilted
transition p_pre(x_{t-1} | x_t) exp(v_{t-1}(x_{t-1}) / alpha) only as M grows. Nested importance sampling corrects
it: the kept candidate, weighted by the mean of the M candidates' exp(v / alpha) (an unbiased estimate of the tilted
transition's normaliser) over exp(v_t(x_t) / alpha), is properly weighted for the tilted path. So each particle
gains, per step, the incremental log-weight

    log (1/M) sum_m exp(v_{t-1}(x^m) / alpha) - v_t(x_t) / alpha,

the weights telescope to exp((r(x_0) - v_T(x_T)) / alpha) (v_0 = r), which targets p_pre(x_0) exp(r(x_0) / alpha)
where v_T(x_T) is the same for every particle (a masked model's all-mask prior, copies of one start; as SMC, only
approximately for a Gaussian prior's distinct x_T), and the population is resampled when
its effective sample size falls below ``ess_threshold`` of its size, then once more at the end by the last weights,
as SMC does (decoders/smc.py). ``num_candidates`` = M candidates per particle and step, ``particles`` = K particles
per returned sample (the population is batch x K; the compute of SVDD-PM's M per particle).

Reductions, tested: with M = 1 the selection draws nothing and the weight is (v_{t-1} - v_t) / alpha, which is SMC;
with no resampling (``ess_threshold = 0``, no final resampling) and alpha -> 0 the selection is SVDD's argmax.
``alpha`` must be positive (the weights divide by it); any value works (posterior mean, learned, soft).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.ranges import AtLeastOne, Positive, Probability
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import ValueFunction, score_states


class NestedSMC(Decoder):
    name = "svdd_smc"
    branches = True  # M next states of each state per step

    def __init__(self, *, reward: Reward, value: ValueFunction, num_candidates: AtLeastOne = 10, particles: AtLeastOne = 1,
                 alpha: Positive = 1.0, ess_threshold: Probability = 0.5,
                 resampling: Literal["systematic", "multinomial"] = "systematic", final_resampling: bool = True,
                 max_batch: AtLeastOne | None = None, dedup: bool = True) -> None:
        """``num_candidates``: M, SVDD's candidates per particle and step. ``particles``: K per returned sample.
        ``alpha``: the target's temperature, in reward units (SVDD's selection and the weights use the same one).
        ``final_resampling=False`` returns the weighted particles (K = 1 only) with their normalised log-weights in
        ``DecodeOutput.log_weights``. ``max_batch`` and ``dedup`` as for SVDD."""
        if value is None:
            raise ValueError("svdd_smc needs a value (value=posterior_mean or value=learned) to select and weight")
        self.keep_options(locals())
        if not final_resampling and particles != 1:
            raise ValueError("final_resampling=false returns the weighted particles themselves, so it needs "
                             f"particles=1 (one particle per sample), got {particles}")
        self.reward = reward
        self.value = value

    def incremental_log_weight(self, step: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The nested importance weight (n,) from ``step`` = (v_{t-1}(x^m) - v_t(x_t)) / alpha (n, M): the candidates'
        mean exp(v / alpha) over the particle's exp(v_t / alpha), in log space. (Written from SMC's (v_{t-1} - v_t) /
        alpha, so that M = 1 gives SMC's weights to the last bit.) ``keep``: the kept candidates, which the correct
        weight does not depend on (tests/test_target_distribution.py weights by them to show the bar catches it)."""
        return torch.logsumexp(step, dim=1) - math.log(step.shape[1])

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        n = batch_size * self.particles
        calls = CallLedger()
        resample = ops.RESAMPLING_SCHEMES[self.resampling]
        population_gen = ops.population_generator(generators)
        particle_gens = ops.repeat_generators(generators, self.particles)  # particle k of sample b: b's generator
        x, groups = self.begin(diffusion, particle_gens, start, copies=self.particles)
        distinct = self.deduplicates(diffusion)
        first_step = self.first_step(diffusion, start)
        scored = score_states(self.value, self.reward, diffusion, x, first_step, self.max_batch, distinct=distinct)
        calls.ask_for_scores(self.value, first_step, n)
        current, denoised = scored.values, scored.denoised  # v_t(x_t) of every particle
        log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
        ess_trace: list[torch.Tensor] = []
        resampled_steps = 0
        for t in self.steps(diffusion, start):
            m = 1 if diffusion.is_deterministic_step(t) else self.num_candidates  # a draw-free step: one candidate
            if denoised is None:
                denoised = self.denoise(diffusion, x, t, calls)
            candidates = diffusion.propose(x, t, m, particle_gens, denoised=denoised)  # (n, M, *event)
            scored = score_states(self.value, self.reward, diffusion, candidates.flatten(0, 1), t - 1, self.max_batch,
                                  distinct=distinct)
            calls.ask_for_scores(self.value, t - 1, n * m)
            values = scored.values.view(n, m)
            keep = ops.select_candidates(values, self.alpha, particle_gens)
            x, denoised = self.keep_candidates(candidates, scored.denoised, keep)
            log_w = log_w + self.incremental_log_weight((values - current[:, None]).double() / self.alpha, keep)
            current = values.gather(1, keep[:, None]).squeeze(1)
            ess = ops.effective_sample_size(log_w)
            ess_trace.append(ess / n)
            if t > 1 and ess < self.ess_threshold * n:
                ancestors = ops.resample_within_groups(resample, log_w, groups, groups, n, population_gen)
                x, current = x[ancestors], current[ancestors]
                denoised = None if denoised is None else denoised[ancestors]
                log_w = torch.zeros_like(log_w)
                resampled_steps += 1
        rewards = current  # the last step scored the clean particles with the reward (v_0 = r)
        trace = {"ess_fraction": torch.stack(ess_trace).tolist()}
        if self.final_resampling:
            slots = None if groups is None else groups[::self.particles]
            ancestors = ops.resample_within_groups(resample, log_w, groups, slots, batch_size, population_gen)
            return self.finish(x[ancestors], rewards[ancestors], calls, trace, resampled_steps=resampled_steps)
        out = self.finish(x, rewards, calls, trace, resampled_steps=resampled_steps)
        out.log_weights = ops.log_normalize(log_w).float()
        return out
