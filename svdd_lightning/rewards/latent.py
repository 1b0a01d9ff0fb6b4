"""Rewards of a latent model's states: decode, then score the data.

A latent diffusion's decoders score latents (candidates, x0-hat, clean samples), but users' rewards score
images. :class:`DecodedReward` puts the model's decoder in front of the reward: ``reward(diffusion.to_data(z))``.
Decoding is differentiable, so a differentiable pixel reward stays differentiable in the latents (DPS through
the VAE decoder); a reward over objects (JPEG size) gets uint8 images from the image domain as usual.
"""

from __future__ import annotations

from torch import Tensor

from svdd_lightning.rewards.base import Reward


class DecodedReward(Reward):
    def __init__(self, *, reward: Reward, diffusion) -> None:
        super().__init__()
        self.inner = reward
        # Borrowed, not registered: the decoding module owns (and moves) the diffusion.
        self._diffusion = [diffusion]
        self.name = getattr(reward, "name", type(reward).__name__)
        self.units = getattr(reward, "units", "")
        self.higher_is_better = getattr(reward, "higher_is_better", True)
        self.is_differentiable = getattr(reward, "is_differentiable", False)

    def forward(self, latents: Tensor) -> Tensor:
        return self.inner(self._diffusion[0].to_data(latents))

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def reward_of_states(reward: Reward, diffusion) -> Reward:
    """The reward as decoders must call it on ``diffusion``'s states: itself, or decoded first for a latent
    model."""
    if getattr(diffusion, "states_are_data", True):
        return reward
    return DecodedReward(reward=reward, diffusion=diffusion)
