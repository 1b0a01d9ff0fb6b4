"""The value of several rewards at once, from one learned value per component.

For ``combine=sum`` the multi reward is sum_i w_i r_i / s_i (rewards/multi.py), and an expectation of a sum is
the sum of the expectations, so sum_i w_i v_i / s_i with v_i ~ E[r_i | x_t] is the value of the combined reward
exactly (no new training: ``reward=[qed,sa] decoder=svdd_mc`` reads value_qed.ckpt and value_sa.ckpt).
For ``combine=product``, exp(sum_i w_i v_i / alpha) is the product of the components' (soft) values, which is the
value of the product only when the components are independent given x_t; decoders that keep the best candidate
(alpha = 0) pick the same one either way, because exp is increasing. A value trained on the combined reward
itself (``train.py stage=value reward=[qed,sa]``, passed as value.checkpoint=PATH) needs neither assumption.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from svdd_lightning.values.base import ValueFunction


class MultiValue(ValueFunction):
    def __init__(self, *, components: dict[str, ValueFunction], weights: list[float], scales: list[float],
                 combine: Literal["sum", "product"] = "sum", alpha: float = 1.0) -> None:
        super().__init__()
        if len(components) != len(weights) or len(components) != len(scales):
            raise ValueError(f"one weight and one scale per component value ({', '.join(components)}), got "
                             f"{weights} and {scales}")
        if combine not in ("sum", "product"):
            raise ValueError(f"combine={combine!r} is unknown; use 'sum' or 'product'")
        if combine == "product" and not alpha > 0:
            raise ValueError(f"alpha must be > 0 for combine=product, got {alpha}")
        if any(not math.isfinite(s) or s <= 0 for s in scales):
            raise ValueError(f"component scales must be positive, got {scales}")
        self.components = nn.ModuleDict(components)
        self.weights = [float(w) for w in weights]
        self.scales = [float(s) for s in scales]
        self.combine = combine
        self.alpha = float(alpha)
        # DPS follows this value's gradient in the state when every component has one.
        self.gradient_in_state = all(getattr(v, "gradient_in_state", False) for v in components.values())

    @property
    def networks_per_object(self) -> int:
        """Value-network calls one object costs: one per component."""
        return len(self.components)

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        parts = [value(x_t, t).float() for value in self.components.values()]
        if self.combine == "sum":
            return sum(w * v / s for w, s, v in zip(self.weights, self.scales, parts))
        return torch.exp(sum(w * v for w, v in zip(self.weights, parts)) / self.alpha)
