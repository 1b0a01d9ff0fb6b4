"""SVDD (Algorithm 1 of Li et al. 2024): soft value-based decoding.

At every step, draw M candidates for x_{t-1} from the pre-trained model (one network call),
score them with a soft value, keep one: the argmax (alpha = 0) or a draw from
Categorical(softmax(v / alpha)). With a posterior-mean value (SVDD-PM) the value call already
runs the denoiser on every candidate, and the chosen candidate's output is reused for the next
proposal, so each step costs M denoiser calls (the reference code recomputes it: M + 1).

The last step lands on clean objects, where the soft value is the reward itself (v_0 = r): they
are scored by the reward, never by a value network outside the t = T..1 it was trained on, and
those scores are the returned rewards (no extra reward call). A step that draws nothing
(``diffusion.is_deterministic_step``: masked diffusion's final argmax, DDIM with sigma = 0) would
make M identical candidates, so one is proposed and scored instead of M.
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
from svdd_lightning.ranges import AtLeastOne, NonNegative, Probability


class SVDD(Decoder):
    name = "svdd"
    branches = True  # M next states of each state per step

    def __init__(self, *, reward: Reward, value: ValueFunction, num_candidates: AtLeastOne = 10, alpha: NonNegative = 0.0,
                 max_batch: AtLeastOne | None = None, dedup: bool = True) -> None:
        """``value`` scores states at t >= 1; at t = 0 the reward does (v_0 = r). ``max_batch``: at
        most this many candidates per value/denoiser call (null: all B x M at once); a memory cap for
        large M or large models that leaves the samples unchanged. ``dedup``: score each distinct
        candidate once (token models; the same samples, fewer calls)."""
        self.keep_options(locals())
        self.reward = reward
        self.value = value

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        chosen_values: list[torch.Tensor] = []  # per step, kept on device until the end (no syncs in the loop)
        population_gen = ops.population_generator(generators)  # draws nothing from the samples' generators
        # Seeds of an inpainting decode: batch members exchange states (SVDD-R) only within a seed's designs.
        x, groups = self.begin(diffusion, generators, start)
        denoised = None  # denoiser output at the current x, when a value call already made it
        for t in self.steps(diffusion, start):
            # A step that draws nothing makes M copies of one object: propose (and score) it once.
            m = 1 if diffusion.is_deterministic_step(t) else self.num_candidates
            if denoised is None:
                denoised = self.denoise(diffusion, x, t, calls)
            candidates = diffusion.propose(x, t, m, generators, denoised=denoised)  # (B, M, *event)
            # v_0 = r: at the last step the clean candidates are scored by the reward itself.
            scored = score_states(self.value, self.reward, diffusion, candidates.flatten(0, 1), t - 1, self.max_batch,
                                  distinct=self.deduplicates(diffusion))
            calls.ask_for_scores(self.value, t - 1, batch_size * m)
            values = scored.values.view(batch_size, m)
            keep = ops.select_candidates(values, self.alpha, generators)
            x, denoised = self.keep_candidates(candidates, scored.denoised, keep)
            chosen = values.gather(1, keep[:, None]).squeeze(1)
            x, denoised, chosen = self.across_batch(x, denoised, chosen, population_gen, groups)
            chosen_values.append(chosen)
        rewards = chosen_values[-1]  # the last step scored the clean samples with the reward (t - 1 = 0)
        return self.finish(x, rewards, calls, self.value_trace(chosen_values))

    def across_batch(self, x, denoised, values, population_gen: torch.Generator, groups=None):
        """A hook after the per-sample selection; plain SVDD keeps batch members independent."""
        return x, denoised, values


class SVDDR(SVDD):
    """SVDD-R (the paper's later version): SVDD plus, after each step's per-sample selection, a
    resampling of a small fraction of the batch with weights exp(v / resample_alpha):
    ``round(resample_fraction * B)`` members (``replace="random"``: drawn uniformly, the default;
    ``"lowest"``: those of lowest value) take the state of members drawn from
    Categorical(softmax(v / resample_alpha)) over the batch. ``resample_alpha`` is in reward units
    (decode.py's default: the domain's reward scale, about one standard deviation of pre-trained
    rewards, as for SMC). ``resample_alpha = 0`` copies the highest-valued members instead, in
    order: a greedy variant that collapses diversity (with ``replace="lowest"``, 64 samples ended as
    2 distinct molecules on QED), so only on request. The batch is a population fixed by global
    indices (see ``decoders/smc.py``). With resample_fraction = 0 nothing is drawn and SVDD-R is
    SVDD."""

    name = "svdd_r"

    def __init__(self, *, reward: Reward, value: ValueFunction, num_candidates: AtLeastOne = 10, alpha: NonNegative = 0.0,
                 resample_fraction: Probability = 0.05, resample_alpha: NonNegative = 1.0,
                 replace: Literal["random", "lowest"] = "random",
                 max_batch: AtLeastOne | None = None, dedup: bool = True) -> None:
        self.keep_options(locals())
        self.reward = reward
        self.value = value

    def across_batch(self, x, denoised, values, population_gen: torch.Generator, groups=None):
        k = int(round(self.resample_fraction * x.shape[0]))
        if k == 0:
            return x, denoised, values
        if self.replace == "random":
            replaced = torch.randperm(x.shape[0], generator=population_gen)[:k].to(x.device)
        else:
            replaced = values.argsort()[:k]
        def pick(candidate_values, count):  # donors among candidates: the best, or softmax(v / resample_alpha)
            if self.resample_alpha == 0:
                return candidate_values.argsort(descending=True)[:count]
            return ops.multinomial_resample(candidate_values.double() / self.resample_alpha, count, population_gen)

        if groups is None:
            donors = pick(values, k)
        else:  # each replaced member takes a donor of its own group (seed)
            donors = torch.empty_like(replaced)
            for g in groups[replaced].unique(sorted=True).tolist():
                where = (groups[replaced] == g).nonzero()[:, 0]
                members = (groups == g).nonzero()[:, 0]
                donors[where] = members[pick(values[members], where.numel())]
        x = x.clone()
        x[replaced] = x[donors]
        values = values.clone()
        values[replaced] = values[donors]
        if denoised is not None:
            denoised = denoised.clone()
            denoised[replaced] = denoised[donors]
        return x, denoised, values
