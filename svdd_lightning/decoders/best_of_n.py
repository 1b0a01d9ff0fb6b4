"""Best-of-N: run N independent pre-trained chains per sample and keep the highest reward.

Compared at equal compute with SVDD-PM: SVDD-PM with M candidates sends M objects per step
through the denoiser, so Best-of-N uses N = M chains unless ``num_particles`` says otherwise.
"""

from __future__ import annotations

import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import score_states
from svdd_lightning.ranges import AtLeastOne


class BestOfN(Decoder):
    name = "best_of_n"

    def __init__(self, *, reward: Reward, num_candidates: AtLeastOne = 10, num_particles: AtLeastOne | None = None,
                 max_batch: AtLeastOne | None = None, dedup: bool = True) -> None:
        """``max_batch``: at most this many chains per denoiser call (null: all B x N at once). ``dedup``: run
        the denoiser and the reward once per distinct chain state (token models; the same samples)."""
        self.keep_options(locals())
        self.reward = reward
        self.num_particles = num_particles or num_candidates  # N chains; null: as many as candidates

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        n = self.num_particles
        calls = CallLedger()
        # Chains are flattened to (B * N); chain k of sample b draws from sample b's generator.
        particle_gens = ops.repeat_generators(generators, n)
        x, _ = self.begin(diffusion, particle_gens, start, copies=n)
        distinct = self.deduplicates(diffusion)
        for t in self.steps(diffusion, start):
            if distinct:
                # Chains start identical (and stay so while nothing is revealed): one denoiser call per distinct
                # state. One proposal over all chains draws each generator's numbers in the order the chunks do.
                denoised = self.denoise(diffusion, x, t, calls, self.max_batch)
                x = diffusion.step(x, t, particle_gens, denoised=denoised).prev_sample
                continue
            calls.ask("denoiser", batch_size * n)
            if self.max_batch is None or x.shape[0] <= self.max_batch:
                x = diffusion.step(x, t, particle_gens).prev_sample
            else:
                # A sample's N chains share its generator, so chunks hold whole samples (a multiple of
                # N chains): the order of every generator's draws, and so the samples, do not change.
                cap = max(n, self.max_batch // n * n)
                x = torch.cat([diffusion.step(x[i:i + cap], t, particle_gens[i:i + cap]).prev_sample
                               for i in range(0, x.shape[0], cap)])
        scored = score_states(None, self.reward, diffusion, x, 0, distinct=distinct)
        calls.ask("reward", batch_size * n)
        rewards = scored.values.view(batch_size, n)
        best = rewards.argmax(dim=1)
        samples = ops.gather_candidates(x.view(batch_size, n, *x.shape[1:]), best)
        return self.finish(samples, rewards.gather(1, best[:, None]).squeeze(1), calls)
