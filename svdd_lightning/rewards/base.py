"""The Reward contract: a black-box (or differentiable) score of clean objects.

``forward(x0) -> (B,)`` on x0's device, higher is better after ``higher_is_better`` is taken
into account by the reward itself (rewards are always maximised). Non-differentiable oracles
run under ``torch.no_grad`` and must return a documented floor for invalid objects, never NaN.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class Reward(nn.Module):
    name: ClassVar[str] = "reward"
    units: ClassVar[str] = ""  # shown on plot axes, e.g. "kcal/mol"
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False

    def forward(self, x0: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
