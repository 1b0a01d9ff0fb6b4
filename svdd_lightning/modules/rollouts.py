"""Pre-trained rollouts for SVDD-MC, run through ``trainer.predict`` so they shard across devices.

Each rollout records its states x_t at the saved steps and the reward of its end point; the
expensive oracle runs once per trajectory, and the value regression reads the written file.
"""

from __future__ import annotations

import lightning as L
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.rewards.base import Reward
from svdd_lightning.stopping import raise_if_requested


def saved_steps(num_steps: int, every: int) -> list[int]:
    """Steps t (T..1) whose state x_t is stored: every ``every``-th, always including 1."""
    steps = list(range(num_steps, 0, -every))
    if steps[-1] != 1:
        steps.append(1)
    return steps


class RolloutModule(L.LightningModule):
    def __init__(self, *, diffusion: Diffusion, reward: Reward, seed: int, save_every: int = 1) -> None:
        super().__init__()
        self.diffusion = diffusion.eval().requires_grad_(False)
        self.reward = reward
        self.seed = seed
        self.steps = saved_steps(diffusion.num_steps, save_every)

    @torch.no_grad()
    def predict_step(self, batch, batch_idx):
        indices = batch
        gens = ops.make_generators(self.seed, indices)
        x = self.diffusion.prior(len(indices), gens)
        keep = set(self.steps)
        states = []
        for t in self.diffusion.timesteps():
            raise_if_requested()  # a stop drops this batch whole (svdd_lightning/stopping.py); written ones stay
            if t in keep:
                states.append(x)
            x = self.diffusion.step(x, t, gens).prev_sample
        # Token states fit in a byte (the mask token included), a 8x smaller rollout file.
        compact = torch.uint8 if not x.dtype.is_floating_point and int(x.max()) < 255 else x.dtype
        return {
            "index": indices.cpu(),
            "states": torch.stack(states, dim=1).to(compact).cpu(),  # (B, K, *event)
            "rewards": self.reward(x).float().cpu(),
            "samples": x.cpu(),
        }
