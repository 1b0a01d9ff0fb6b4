"""Several rewards at once: ``reward=[qed,sa]`` (or ``reward=multi reward.components=[qed,sa]``).

The decoders steer by one number per object. Components are combined as

- ``combine=sum`` (default): sum_i w_i r_i / s_i, each component divided by its scale s_i (the domain's
  ``reward_scale`` for it, about one standard deviation of pre-trained rewards, so that one unit means the same
  for QED and SA); an offset would not change any decoder's choice (argmax, softmax and SMC's increments are
  shift-invariant), so none is subtracted;
- ``combine=product``: exp(sum_i w_i r_i / alpha), the product of exp(w_i r_i / alpha), the Feynman-Kac product
  target's form.

Every component's own value is recorded per sample (``samples.csv`` columns ``reward_<name>``, summary.json
``components``) and the run draws ``pareto.png`` (the first two components against each other).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from svdd_lightning.rewards.base import Reward


def check_combination(names: list[str], *, weights: list[float], scales: list[float], combine: str,
                      alpha: float) -> None:
    """ValueError naming what is wrong with a combination of the components ``names``."""
    if len(weights) != len(names) or len(scales) != len(names):
        raise ValueError(f"reward.weights and reward.scales need one entry per component ({', '.join(names)}), got "
                         f"{weights} and {scales}")
    if any(not math.isfinite(s) or s <= 0 for s in scales):
        raise ValueError(f"component scales must be positive, got {scales}")
    if combine not in ("sum", "product"):
        raise ValueError(f"reward.combine={combine!r} is unknown; use 'sum' (weighted sum of standardised rewards) "
                         f"or 'product' (exp(sum w_i r_i / alpha))")
    if combine == "product" and not alpha > 0:
        raise ValueError(f"reward.alpha must be > 0 for combine=product, got {alpha}")


def combine_values(values: list[Tensor], *, weights: list[float], scales: list[float], combine: str,
                   alpha: float) -> Tensor:
    """sum_i w_i v_i / s_i (combine=sum) or exp(sum_i w_i v_i / alpha) (combine=product), for rewards and, in
    values/multi.py, for the component values."""
    if combine == "sum":
        return sum(w * v / s for w, s, v in zip(weights, scales, values))
    return torch.exp(sum(w * v for w, v in zip(weights, values)) / alpha)


class MultiReward(Reward):
    units = "combined"

    def __init__(self, *, components: dict[str, Reward], weights: list[float] | None = None,
                 scales: list[float] | None = None, combine: Literal["sum", "product"] = "sum",
                 alpha: float = 1.0) -> None:
        super().__init__()
        if len(components) < 1:
            raise ValueError("a multi-objective reward needs at least one component, e.g. reward=[qed,sa]")
        count = len(components)
        weights = [1.0] * count if weights is None else [float(w) for w in weights]
        scales = [1.0] * count if scales is None else [float(s) for s in scales]
        check_combination(list(components), weights=weights, scales=scales, combine=combine, alpha=alpha)
        self.components = nn.ModuleDict(components)
        self.weights = weights
        self.scales = scales
        self.combine = combine
        self.alpha = float(alpha)
        self.name = "+".join(components)
        self.is_differentiable = all(getattr(r, "is_differentiable", False) for r in components.values())

    def component_values(self, x0: Tensor) -> dict[str, Tensor]:
        """Each component's reward of ``x0``, (B,) each."""
        return {name: reward(x0).float() for name, reward in self.components.items()}

    def forward(self, x0: Tensor) -> Tensor:
        return combine_values(list(self.component_values(x0).values()), weights=self.weights, scales=self.scales,
                              combine=self.combine, alpha=self.alpha)

    def close(self) -> None:
        for reward in self.components.values():
            getattr(reward, "close", lambda: None)()


def multi_reward_inside(reward: Reward) -> MultiReward | None:
    """The MultiReward inside ``reward``'s wrappers (the NaN guard, a latent model's decoder), or None."""
    seen = reward
    while not isinstance(seen, MultiReward) and getattr(seen, "inner", None) is not None:
        seen = seen.inner
    return seen if isinstance(seen, MultiReward) else None
