"""A decoder added from outside the library: the pre-trained sampler for every step but the last, where each
sample proposes M clean candidates from its x_1 and keeps the one of highest reward (best-of-M on the last step
only: M times the reward calls of the pre-trained sampler, no extra denoiser calls). Where the last step draws
nothing (masked diffusion's final argmax) the M candidates are equal: a toy, for the plumbing, not for rewards.

Nothing under svdd_lightning/ knows about it: tests/configs/decoder/last_step_best.yaml names this class, and
decode.py (with hydra.searchpath), svdd_lightning.decode (search_path=) and benchmark.py (--search_path) find it
there. Its calls are measured around it like any decoder's (svdd_lightning/calls.py); it declares only its budget.
"""

from __future__ import annotations

import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.ranges import AtLeastOne
from svdd_lightning.values.base import score_states


class LastStepBest(Decoder):
    name = "last_step_best"

    def __init__(self, *, reward, num_candidates: AtLeastOne = 4, dedup: bool = True) -> None:
        self.keep_options(locals())
        self.reward = reward

    @torch.no_grad()
    def __call__(self, diffusion, batch_size, generators, start=None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        x, _ = self.begin(diffusion, generators, start)
        steps = list(self.steps(diffusion, start))
        for t in steps[:-1]:
            x = diffusion.step(x, t, generators, denoised=self.denoise(diffusion, x, t, calls)).prev_sample
        last = steps[-1]
        # No shortcut for a step that draws nothing (masked diffusion's final argmax): its M candidates are equal,
        # and dedup scores them once, so the reward calls made fall below those asked.
        m = self.num_candidates
        candidates = diffusion.propose(x, last, m, generators, denoised=self.denoise(diffusion, x, last, calls))
        scored = score_states(None, self.reward, diffusion, candidates.flatten(0, 1), 0,
                              distinct=self.deduplicates(diffusion))
        calls.ask("reward", batch_size * m)
        values = scored.values.view(batch_size, m)
        keep = values.argmax(dim=1)
        return self.finish(ops.gather_candidates(candidates, keep), values.gather(1, keep[:, None]).squeeze(1), calls)
