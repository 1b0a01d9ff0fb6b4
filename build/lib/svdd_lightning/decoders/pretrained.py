"""Plain ancestral sampling from the pre-trained model (the reference every method is judged by)."""

from __future__ import annotations

import torch

from svdd_lightning.decoders.base import CallCounter, Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward


class PretrainedSampler(Decoder):
    name = "pretrained"

    def __init__(self, *, reward: Reward) -> None:
        self.reward = reward

    def settings(self) -> dict:
        return {"num_candidates": 1}

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallCounter()
        x = diffusion.prior(batch_size, generators)
        for t in self.steps(diffusion):
            x = diffusion.step(x, t, generators).prev_sample
            calls.denoiser += batch_size
        rewards = self.reward(x)
        calls.reward += batch_size
        return self.finish(x, rewards, calls)
