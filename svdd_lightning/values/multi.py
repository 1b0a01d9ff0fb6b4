"""The value of several rewards at once, from one learned value per component.

``reward=[qed,sa] decoder=svdd_mc`` (or dps) needs no new training: the shipped value of each component
(checkpoints/<domain>/value_<name>.ckpt) is read and combined as the rewards are (rewards/multi.py). How close
that is to the value of the combined reward depends on the values' targets (``value_training.target``):

- ``combine=sum`` with mean values (v_i ~ E[r_i | x_t]): exact. The expectation of a weighted sum is the weighted
  sum of the expectations, so sum_i w_i v_i / s_i is E[sum_i w_i r_i / s_i | x_t].
- ``combine=sum`` with soft values (v_i ~ alpha_i log E[exp(r_i / alpha_i) | x_t]): the soft value of the sum
  only when the components are independent given x_t and each alpha_i = alpha s_i / w_i; otherwise a heuristic.
- ``combine=product`` (exp(sum_i w_i v_i / alpha)): with mean values it is below the value of the product
  (Jensen), with soft values it equals it only for independent components. Decoders that keep the best candidate
  (alpha = 0) rank candidates by sum_i w_i v_i either way, since exp is increasing.

Components trained with different targets estimate different quantities and are refused. A value trained on the
combined reward itself (``train.py stage=value reward=[qed,sa]``, passed as value.checkpoint=PATH) needs none of
this.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from svdd_lightning.rewards.multi import check_combination, combine_values
from svdd_lightning.values.base import ValueFunction


class MultiValue(ValueFunction):
    def __init__(self, *, components: dict[str, ValueFunction], weights: list[float], scales: list[float],
                 combine: Literal["sum", "product"] = "sum", alpha: float = 1.0,
                 targets: list[str] | None = None) -> None:
        super().__init__()
        names = list(components)
        weights, scales = [float(w) for w in weights], [float(s) for s in scales]
        check_combination(names, weights=weights, scales=scales, combine=combine, alpha=alpha)
        targets = ["mean"] * len(names) if targets is None else [str(t) for t in targets]
        if len(set(targets)) > 1:
            shown = ", ".join(f"{n}: {t}" for n, t in zip(names, targets))
            raise ValueError(f"the component values were trained with different targets ({shown}): one estimates "
                             f"E[r | x_t], another alpha log E[exp(r / alpha) | x_t], and their combination neither. "
                             f"Train them with one value_training.target.")
        self.components = nn.ModuleDict(components)
        self.weights, self.scales = weights, scales
        self.combine = combine
        self.alpha = float(alpha)
        self.target = targets[0] if targets else "mean"
        # DPS follows this value's gradient in the state when every component has one.
        self.gradient_in_state = all(getattr(v, "gradient_in_state", False) for v in components.values())

    @property
    def exact(self) -> bool:
        """Whether the combination is the combined reward's value: only for a sum of mean values (module docstring)."""
        return self.combine == "sum" and self.target == "mean"

    # Its components run (and are counted), not the combination.
    runs_a_network = False

    def asked_per_state(self) -> dict[str, int]:
        """What every component asks for one state, summed (one value-network row each for learned values)."""
        total: dict[str, int] = {}
        for value in self.components.values():
            for kind, n in value.asked_per_state().items():
                total[kind] = total.get(kind, 0) + n
        return total

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        parts = [value(x_t, t).float() for value in self.components.values()]
        return combine_values(parts, weights=self.weights, scales=self.scales, combine=self.combine,
                              alpha=self.alpha)
