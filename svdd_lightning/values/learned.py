"""SVDD-MC: a value network v(x_t, t) regressed onto rewards of pre-trained rollouts.

The network sees the noisy state and the time fraction t / T (so a value trained with one T
can guide a sampler with another). It is trained on standardised rewards, and the reward
mean and spread are buffers of this module, so ``forward`` returns reward units whatever the
reward's scale (JPEG sizes vary by thousandths of a kB, motif scores by bits). Only the value
network's weights and these two numbers live in its checkpoint; the frozen pre-trained model
is not saved into it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from svdd_lightning.distinct import in_whole_blocks
from svdd_lightning.values.base import ValueFunction
from svdd_lightning.ranges import AtLeastOne


def as_network_input(x_t: Tensor) -> Tensor:
    """Token states (stored as bytes in rollout files) become long ids; images stay float."""
    return x_t if x_t.dtype.is_floating_point else x_t.long()


class LearnedValue(ValueFunction):
    gradient_in_state = True

    def __init__(self, *, network: nn.Module, num_steps: AtLeastOne) -> None:
        super().__init__()
        self.network = network
        self.num_steps = num_steps
        self.register_buffer("target_mean", torch.tensor(0.0))
        self.register_buffer("target_std", torch.tensor(1.0))

    def set_target_scale(self, mean: float, std: float) -> None:
        self.target_mean.fill_(float(mean))
        self.target_std.fill_(max(float(std), 1e-8))

    def standardized(self, x_t: Tensor, t: Tensor) -> Tensor:
        """The network's raw output: the value in standard units of the training rewards."""
        # In whole blocks of rows, so that a row's value does not depend on the rows beside it (distinct.py).
        return in_whole_blocks(self.network, as_network_input(x_t), t.float() / self.num_steps)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.target_mean + self.target_std * self.standardized(x_t, t)
