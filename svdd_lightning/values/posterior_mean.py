"""SVDD-PM: the training-free value v(x_t) = r(x0_hat(x_t)).

x0_hat is the denoiser's estimate: Tweedie's posterior mean for Gaussian models, the argmax at
masked positions (unmasked tokens kept) for masked models. At t = 0 the state is already clean,
so the value is the reward itself and no denoiser call is made.
"""

from __future__ import annotations

import torch
from torch import Tensor

from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.rewards.base import Reward
from svdd_lightning.values.base import ValueFunction, ValueOutput


class PosteriorMeanValue(ValueFunction):
    # The denoiser and the reward, counted as such: no network of its own.
    runs_a_network = False

    def asked_per_state(self) -> dict[str, int]:
        """One denoiser row and one reward row per state (the reward of the posterior-mean estimate)."""
        return {"denoiser": 1, "reward": 1}

    def __init__(self, *, reward: Reward, diffusion: Diffusion) -> None:
        super().__init__()
        self.reward = reward
        # Not registered as a submodule: the value borrows the decoder's frozen diffusion.
        self._diffusion = [diffusion]

    @property
    def diffusion(self) -> Diffusion:
        return self._diffusion[0]

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.evaluate(self.diffusion, x_t, t).values

    def evaluate(self, diffusion: Diffusion, x_t: Tensor, t: int | Tensor) -> ValueOutput:
        batch = x_t.shape[0]
        # Decoders pass one int step: whether it is t = 0 is known on the host, with no device sync per call.
        step = None if isinstance(t, Tensor) else int(t)
        t = diffusion.as_time(t, batch)
        clean_batch = step == 0 if step is not None else bool((t == 0).all())
        if clean_batch:
            return ValueOutput(values=self.reward(x_t), denoised=None)
        denoised = diffusion.denoise(x_t, t)
        x0_hat = diffusion.x0_estimate(x_t, t, denoised)
        if step is None:  # a time tensor: rows already at t = 0 are clean and kept
            clean = (t == 0).view(-1, *([1] * (x_t.dim() - 1)))
            x0_hat = torch.where(clean, x_t, x0_hat)
        else:  # no row is clean: what torch.where would return, without building the mask
            x0_hat = x0_hat.to(torch.promote_types(x_t.dtype, x0_hat.dtype))
        return ValueOutput(values=self.reward(x0_hat), denoised=denoised)
