"""Value-guided beam search (as in TreeG, arXiv 2502.11420, and DSearch): SVDD with A active paths per sample.

Every step, each of a sample's A paths proposes K candidates for x_{t-1} from the pre-trained model (one network
call over the B x A paths; candidates on their own axis, B x A x K), every child is scored by the soft value (the
posterior-mean value r(x0_hat), or a learned one), and the sample keeps A of its A x K children: the top A by
value (``alpha = 0``), or A drawn without replacement from softmax(v / alpha) (Gumbel top-k). At the end the best
path by reward is returned. With A = 1 it is SVDD with M = K, draw for draw (a test).

Paths are flattened to (B * A); path a of sample b draws from sample b's generator after paths 0..a-1, so a sample
still depends only on (seed, index). Calls: B x A x K objects scored per step, so A x K = M matches SVDD-PM's M.
The chosen children's denoiser outputs (made by the posterior-mean value) are reused for the next proposals.
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
from svdd_lightning.values.base import ValueFunction, score_states
from svdd_lightning.ranges import AtLeastOne, NonNegative


class BeamSearch(Decoder):
    name = "beam"
    branches = True  # M next states of each state per step

    def __init__(self, *, reward: Reward, value: ValueFunction, beams: AtLeastOne = 4, num_candidates: AtLeastOne = 3,
                 alpha: NonNegative = 0.0, max_batch: AtLeastOne | None = None, dedup: bool = True) -> None:
        """``beams``: A active paths per sample; ``num_candidates``: K children per path and step; ``alpha``: 0
        keeps the top A children, > 0 draws A from softmax(v / alpha) without replacement."""
        self.keep_options(locals())
        self.reward = reward
        self.value = value

    def keep(self, values: torch.Tensor, generators: Generators) -> torch.Tensor:
        """Indices (B, A) of the kept children among each sample's (B, C) children."""
        if self.beams == 1:  # exactly SVDD's selection (argmax, or one Gumbel-max draw)
            return ops.select_candidates(values, self.alpha, generators)[:, None]
        # A paths x K >= 1 children each: there are always at least A to keep.
        if self.alpha == 0:
            return values.argsort(dim=1, descending=True, stable=True)[:, :self.beams]
        noise = ops.gumbel(generators, values.shape[1:], values.device)
        return (values / self.alpha + noise).argsort(dim=1, descending=True, stable=True)[:, :self.beams]

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        distinct = self.deduplicates(diffusion)
        paths = self.beams
        path_gens = ops.repeat_generators(generators, paths)
        x, _ = self.begin(diffusion, path_gens, start, copies=paths)  # (B * A, *event)
        denoised = None
        chosen_values: list[torch.Tensor] = []
        values = None
        for t in self.steps(diffusion, start):
            k = 1 if diffusion.is_deterministic_step(t) else self.num_candidates
            if denoised is None:
                denoised = self.denoise(diffusion, x, t, calls, self.max_batch)
            children = diffusion.propose(x, t, k, path_gens, denoised=denoised)  # (B * A, K, *event)
            event = children.shape[2:]
            flat = children.reshape(batch_size, paths * k, *event)
            scored = score_states(self.value, self.reward, diffusion, flat.flatten(0, 1), t - 1, self.max_batch,
                                  distinct=distinct)
            calls.ask_for_scores(self.value, t - 1, batch_size * paths * k)
            values = scored.values.view(batch_size, paths * k)
            kept = self.keep(values, generators)  # (B, A)
            x, denoised = self.keep_candidates(flat, scored.denoised, kept)  # (B * A, *event)
            values = values.gather(1, kept)
            chosen_values.append(values.max(dim=1).values)
        # The last step scored the clean paths with the reward (t - 1 = 0): return each sample's best.
        best = values.argmax(dim=1)
        samples = ops.gather_candidates(x.view(batch_size, paths, *x.shape[1:]), best)
        return self.finish(samples, values.gather(1, best[:, None]).squeeze(1), calls, self.value_trace(chosen_values))
