"""SVDD-MC: a value network v(x_t, t) regressed onto rewards of pre-trained rollouts.

The network sees the noisy state and the time fraction t / T (so a value trained with one T
can guide a sampler with another). Only the value network's weights live in its checkpoint;
the frozen pre-trained model is not saved into it.
"""

from __future__ import annotations

from torch import Tensor, nn

from svdd_lightning.values.base import ValueFunction


class LearnedValue(ValueFunction):
    def __init__(self, *, network: nn.Module, num_steps: int) -> None:
        super().__init__()
        self.network = network
        self.num_steps = num_steps

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.network(x_t, t.float() / self.num_steps)
