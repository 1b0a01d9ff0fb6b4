"""Plain ancestral sampling from the pre-trained model (the reference every method is judged by)."""

from __future__ import annotations

import torch

from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import score_states


class PretrainedSampler(Decoder):
    name = "pretrained"

    def __init__(self, *, reward: Reward, dedup: bool = True) -> None:
        """``dedup``: run the denoiser once per distinct state (token models; the same samples)."""
        self.keep_options(locals())
        self.reward = reward

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        x, _ = self.begin(diffusion, generators, start)
        for t in self.steps(diffusion, start):
            denoised = self.denoise(diffusion, x, t, calls)
            x = diffusion.step(x, t, generators, denoised=denoised).prev_sample
        scored = score_states(None, self.reward, diffusion, x, 0, distinct=self.deduplicates(diffusion))
        rewards = scored.values
        calls.ask("reward", batch_size)
        return self.finish(x, rewards, calls)
