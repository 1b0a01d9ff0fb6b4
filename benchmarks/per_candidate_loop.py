"""SVDD-PM written the way the reference code is structured, for speed comparisons only.

Per step it calls the denoiser on x_t, then loops over the M candidates: draw one candidate,
run the denoiser on it for x0-hat, score x0-hat with the reward; keep the best. The chosen
candidate's denoiser output is not reused (the next step recomputes it). Same model, same
algorithm, same per-sample generators as ``svdd_lightning.decoders.svdd.SVDD`` with a
posterior-mean value; the draws come in a different order, so the samples are different draws
from the same distribution.
"""

from __future__ import annotations

import torch

from svdd_lightning.decoders.base import CallCounter, Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward


class PerCandidateLoopSVDD(Decoder):
    name = "svdd_pm_loop"

    def __init__(self, *, reward: Reward, num_candidates: int = 10) -> None:
        self.reward = reward
        self.num_candidates = num_candidates

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators) -> DecodeOutput:
        calls = CallCounter()
        x = diffusion.prior(batch_size, generators)
        for t in diffusion.timesteps():
            denoised = diffusion.denoise(x, t)  # recomputed every step
            calls.denoiser += batch_size
            best_x, best_v = None, None
            for _ in range(self.num_candidates):  # one candidate at a time
                candidate = diffusion.propose(x, t, 1, generators, denoised=denoised)[:, 0]
                if t - 1 > 0:
                    x0_hat = diffusion.x0_estimate(candidate, t - 1, diffusion.denoise(candidate, t - 1))
                    calls.denoiser += batch_size
                else:
                    x0_hat = candidate
                v = self.reward(x0_hat)
                calls.reward += batch_size
                if best_x is None:
                    best_x, best_v = candidate, v
                else:
                    better = v > best_v
                    best_x = torch.where(better.view(-1, *([1] * (x.dim() - 1))), candidate, best_x)
                    best_v = torch.where(better, v, best_v)
            x = best_x
        rewards = self.reward(x)
        calls.reward += batch_size
        return self.finish(x, rewards, calls)
