"""DPS: gradient guidance through the denoiser's estimate (Chung et al. 2023), the paper's
gradient-based baseline.

Each step makes one pre-trained proposal, steered by a gradient:

- continuous (Gaussian) models: x_{t-1} = DDIM/DDPM step + scale * g, with g the gradient in
  x_t of r(x0_hat(x_t)) backpropagated through Tweedie's x0-hat (DPS proper), or of the learned
  value v(x_t, t) (classifier guidance);
- discrete (masked) models, as in the reference code: the denoiser's token log-probabilities at
  masked positions are shifted by scale * g, with g the gradient of r (or of the learned value at
  t = 1, the least-noisy step it was trained on) at the soft one-hot x0-hat (the denoiser's probabilities), and the proposal samples from
  the shifted distribution.

Where the reward has no gradient (QED, SA, MFE, JPEG size), DPS guides with the learned SVDD-MC
value instead and says so in ``settings()["guided_by"]``; with neither it refuses to run rather
than silently doing nothing. The gradient is rescaled to unit root-mean-square per sample, so
``guidance_scale`` means the same for rewards of any units (DPS itself divides its step by a
residual norm for the same reason); scale 0 is pre-trained sampling. The final, noise-free step
(t = 1 -> 0) is taken unguided, as in DPS.
"""

from __future__ import annotations

import torch
from torch import Tensor

from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import ValueFunction
from svdd_lightning.ranges import NonNegative

GUIDES = {"reward": "reward gradient through x0-hat (DPS)",
          "value": "learned SVDD-MC value gradient (classifier guidance; the reward is not differentiable)"}


def unit_rms(g: Tensor) -> Tensor:
    """Per-sample gradient rescaled to root-mean-square one (zero stays zero)."""
    rms = g.flatten(1).pow(2).mean(dim=1).sqrt().clamp_min(1e-12)
    return g / rms.view(-1, *([1] * (g.dim() - 1)))


class DPS(Decoder):
    name = "dps"
    # decode.py builds the learned value only when the reward has no gradient of its own.
    value_only_without_reward_gradient = True

    def __init__(self, *, reward: Reward, value: ValueFunction | None = None, guidance_scale: NonNegative = 1.0) -> None:
        self.keep_options(locals())
        if getattr(reward, "is_differentiable", False):
            self.guide = "reward"
        elif getattr(value, "gradient_in_state", False):
            self.guide = "value"
        else:
            raise ValueError(
                f"DPS needs a gradient, but the reward '{getattr(reward, 'name', type(reward).__name__)}' is not "
                f"differentiable and no learned value was given; pass value=learned (an SVDD-MC value from "
                f"`train.py stage=value`) to guide with its gradient, or use a decoder that needs no gradient "
                f"(svdd_pm, smc, best_of_n).")
        self.reward = reward
        self.value = value if self.guide == "value" else None

    def settings(self) -> dict:
        return {**super().settings(), "guided_by": GUIDES[self.guide]}

    def _objective(self, x: Tensor, t: Tensor) -> Tensor:
        if self.guide == "reward":
            return self.reward(x)
        return self.value(x, t)

    def _continuous_step(self, diffusion: Diffusion, x: Tensor, t: int, generators: Generators) -> Tensor:
        tt = diffusion.as_time(t, x.shape[0])
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            x0_hat = diffusion.denoise(x_in, tt)
            # DPS differentiates r(x0_hat(x_t)) through the denoiser; classifier guidance v(x_t, t).
            objective = self._objective(x0_hat, torch.zeros_like(tt)) if self.guide == "reward" else self._objective(x_in, tt)
            (grad,) = torch.autograd.grad(objective.sum(), x_in)
        proposal = diffusion.propose(x, t, 1, generators, denoised=x0_hat.detach())[:, 0]
        return proposal + self.guidance_scale * unit_rms(grad)

    def _discrete_step(self, diffusion: Diffusion, x: Tensor, t: int, generators: Generators) -> Tensor:
        probs = diffusion.denoise(x, t)  # (B, L, V); unmasked positions are one-hot
        with torch.enable_grad():
            soft = probs.detach().requires_grad_(True)
            # The soft x0-hat is (nearly) clean. A learned value is read at t = 1, the least-noisy
            # step its rollouts hold (it never saw t = 0, where v_0 = r); the reward ignores t.
            objective = self._objective(soft, torch.ones(x.shape[0], dtype=torch.long, device=x.device))
            (grad,) = torch.autograd.grad(objective.sum(), soft)
        shift = self.guidance_scale * unit_rms(grad)
        guided = torch.softmax(probs.clamp_min(1e-30).log() + shift, dim=-1)
        masked = (x == diffusion.mask_index).unsqueeze(-1)
        guided = torch.where(masked, guided, probs)
        return diffusion.propose(x, t, 1, generators, denoised=guided)[:, 0]

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        x, _ = self.begin(diffusion, generators, start)
        continuous = x.dtype.is_floating_point
        for t in self.steps(diffusion, start):
            calls.ask("denoiser", batch_size)
            if t == 1:
                # The final, noise-free step (x0-hat itself, or the argmax of every mask): DPS's
                # guidance corrects a noisy step, and here a shift would only move the output off
                # the model's own estimate, so the step is the pre-trained one.
                x = diffusion.step(x, t, generators).prev_sample
                continue
            if continuous:
                x = self._continuous_step(diffusion, x, t, generators)
            else:
                x = self._discrete_step(diffusion, x, t, generators)
            if self.guide == "reward":
                calls.ask("reward", batch_size)
            else:
                calls.ask_for_scores(self.value, t, batch_size)
        rewards = self.reward(x)
        calls.ask("reward", batch_size)
        return self.finish(x, rewards, calls)
