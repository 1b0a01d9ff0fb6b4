"""A reward wrapper that turns a misbehaving black-box reward into a clear error (or a floor).

User rewards (lab assay predictors, docking scripts) can raise or return NaN/inf on odd objects.
Unchecked, a NaN wins every argmax comparison as False and silently corrupts SVDD's selection.
``GuardedReward`` checks every call: an exception or a wrong shape stops decoding with a
:class:`RewardError` naming the reward and the offending object; a non-finite score does the same
unless the user chose a floor (``reward_floor=VALUE``), which then replaces it and is counted
(``replaced``), reported in summary.json.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from svdd_lightning.errors import RewardError
from svdd_lightning.rewards.base import Reward


class GuardedReward(Reward):
    def __init__(self, *, reward: Reward, floor: float | None = None,
                 describe: Callable[[Tensor], str] | None = None) -> None:
        super().__init__()
        self.inner = reward
        self.floor = None if floor is None else float(floor)
        self.describe = describe
        self.replaced = 0
        # Reward metadata read by decoders and summaries: the wrapped reward's own.
        self.name = getattr(reward, "name", type(reward).__name__)
        self.units = getattr(reward, "units", "")
        self.higher_is_better = getattr(reward, "higher_is_better", True)
        self.is_differentiable = getattr(reward, "is_differentiable", False)

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()

    def _show(self, x0: Tensor, i: int) -> str:
        if self.describe is None:
            return f"object {i} of the batch"
        try:
            return f"object {i} of the batch, {self.describe(x0[i:i + 1])!r}"
        except Exception:  # a soft input (DPS) has no text form
            return f"object {i} of the batch"

    def forward(self, x0: Tensor) -> Tensor:
        try:
            r = self.inner(x0)
        except RewardError:
            raise
        except Exception as exc:
            raise RewardError(
                f"the reward '{self.name}' raised {type(exc).__name__}: {exc} while scoring a batch of {x0.shape[0]} "
                f"objects (the first: {self._show(x0, 0)}); fix the reward so it scores every object, giving "
                f"invalid ones a finite floor.") from exc
        if not isinstance(r, Tensor) or r.shape != (x0.shape[0],):
            raise RewardError(f"the reward '{self.name}' returned {type(r).__name__} of shape "
                              f"{tuple(getattr(r, 'shape', ()))} for a batch of {x0.shape[0]} objects; a reward "
                              f"must return one number per object, shape ({x0.shape[0]},).")
        bad = ~torch.isfinite(r)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            if self.floor is None:
                raise RewardError(
                    f"the reward '{self.name}' returned {float(r[i])} for {self._show(x0, i)}; make it return a "
                    f"finite floor for invalid objects, or pass reward_floor=VALUE to score such objects VALUE "
                    f"(the cases are counted in summary.json).")
            self.replaced += int(bad.sum())
            r = torch.where(bad, torch.full_like(r, self.floor), r)
        return r
