"""Rewards over the objects a user knows: ``str`` sequences, SMILES, uint8 image arrays.

A reward that declares ``takes_objects = True`` (an :class:`ObjectReward`) never sees tensors or
token ids. The framework (:class:`ObjectRewardModule`) asks the run's domain to turn each batch into
objects, scores each distinct object once per run (memoised by the domain's ``object_key``), sends
the misses of large calls to a process pool, gives invalid objects (``None``: a molecule that
decodes to nothing, a sequence with a leftover mask) the reward's ``floor`` without calling it, and
returns a float32 tensor on the batch's device. The built-in CPU oracles (QED, SA, logP, MFE, JPEG
size) are such rewards, and so is any plain function ``f(list[obj]) -> list[float]`` plugged in with
``reward._target_=my_module.my_function`` (:class:`FunctionReward`).

Not differentiable: DPS steers such rewards through a learned value.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from svdd_lightning.errors import RewardError
from svdd_lightning.ranges import FiniteFloat, NonNegativeInt
from svdd_lightning.rewards.base import Reward
from svdd_lightning.rewards.pool import PooledScorer


def score_each(score: Callable[[Any], float], objects: Sequence[Any]) -> list[float]:
    """A batch function from a function of one object (top level, so a process pool can run it)."""
    return [score(obj) for obj in objects]


def picklable(fn: Callable[..., Any]) -> bool:
    try:
        pickle.dumps(fn)
    except Exception:
        return False
    return True


class ObjectReward:
    """A reward over a list of objects. ``fn(objects) -> scores`` must be picklable (a top-level function
    or a ``functools.partial`` of one) to be pooled; otherwise it runs in this process."""

    name: ClassVar[str] = "reward"
    units: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False
    takes_objects: ClassVar[bool] = True
    floor: float | None = None

    def __init__(self, *, fn: Callable[[list[Any]], Sequence[float]], floor: FiniteFloat | None = None,
                 workers: NonNegativeInt | None = None, cache: bool = True) -> None:
        """
        Args:
            fn: scores of a list of valid objects, one float per object.
            floor: the score of an invalid object (None: an invalid object is an error).
            workers: processes scoring the misses of a call (null = all available cores, 0 = this process).
            cache: score each distinct object once per run.
        """
        self.fn = fn
        self.floor = floor if floor is None else float(floor)
        self.workers = 0 if not picklable(fn) else workers
        self.cache = bool(cache)

    def worth_pooling(self, objects: Sequence[Any]) -> bool:
        """Whether the misses of this call are worth sending to worker processes."""
        return True

    def to_reward_units(self, scores: Tensor) -> Tensor:
        """What ``fn`` returned (float32, one per object) in the reward's units."""
        return scores


class FunctionReward(ObjectReward):
    """A user's plain function ``f(list[obj]) -> list[float]`` as a reward; keyword options of the config
    node other than ``name``, ``floor``, ``workers`` and ``cache`` are bound to the function."""

    def __init__(self, *, fn: Callable[..., Sequence[float]], name: str | None = None,
                 floor: FiniteFloat | None = None, workers: NonNegativeInt | None = None, cache: bool = True,
                 options: dict[str, Any] | None = None) -> None:
        bound = functools.partial(fn, **options) if options else fn
        super().__init__(fn=bound, floor=floor, workers=workers, cache=cache)
        self.name = name or getattr(fn, "__name__", "reward")  # instance attribute: each function its own name


class ObjectRewardModule(Reward):
    """Runs an :class:`ObjectReward` on tensors of one domain: convert, memoise, pool, floor."""

    def __init__(self, *, reward: ObjectReward, domain: Any) -> None:
        super().__init__()
        self.inner = reward
        self.domain = domain
        self.name = reward.name
        self.units = reward.units
        self.higher_is_better = reward.higher_is_better
        self.is_differentiable = False
        self.scorer = PooledScorer(reward.fn, workers=reward.workers, cache=reward.cache)

    def cache_stats(self) -> dict[str, float]:
        return {**self.scorer.stats.as_dict(), "workers": self.scorer.workers}

    def close(self) -> None:
        self.scorer.close()

    @torch.no_grad()
    def forward(self, x0: Tensor) -> Tensor:
        objects = self.domain.to_objects(x0)
        valid = [i for i, obj in enumerate(objects) if obj is not None]
        if len(valid) < len(objects) and self.inner.floor is None:
            bad = next(i for i, obj in enumerate(objects) if obj is None)
            raise RewardError(
                f"the reward '{self.name}' got an invalid object ({self.domain.describe(x0[bad:bad + 1])!r}, "
                f"object {bad} of the batch, which is no valid {self.domain.name} object); pass "
                f"reward.floor=VALUE to score invalid objects VALUE.")
        # The floor is in reward units already; only what the function returned is converted.
        scores = torch.full((len(objects),), math.nan if self.inner.floor is None else self.inner.floor)
        if valid:
            chosen = [objects[i] for i in valid]
            keys = [self.domain.object_key(obj) for obj in chosen]
            # One score per key (the scorer checks what the function returns, see rewards/pool.py).
            got = self.scorer(keys, chosen, pool=self.inner.worth_pooling(chosen))
            scores[valid] = self.inner.to_reward_units(torch.tensor(got, dtype=torch.float32))
        return scores.to(x0.device)
