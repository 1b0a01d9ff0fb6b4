"""Scoring CPU oracles without stalling the decode loop: memoised and pooled.

SVDD scores B x M objects per step with a black-box oracle (RDKit, ViennaRNA, Pillow). Two things
make that cheap:

- memoisation by canonical form: the posterior-mean estimates of late masked steps repeat a lot
  (most candidates reveal a pad token or change nothing in x0-hat), so each distinct object is
  scored once per run; ``stats`` counts lookups and hits so the hit rate can be reported;
- a process pool sized to the available cores for the misses, used only when a call has enough
  misses to pay for the inter-process traffic (``min_pool_batch``).

The scoring function must be a picklable top-level function (or ``functools.partial`` of one) of
a list of objects, returning one float per object. The pool is created lazily with the ``fork`` start method (the
children only run the oracle, never torch) and is not pickled with the reward.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any


def available_workers() -> int:
    """CPU cores this process may use, shared among the local DDP ranks."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, ranks))


def one_per_object(scores: Sequence[float], objects: Sequence[Any]) -> list[float]:
    """A scoring function's floats, checked to be one per object."""
    scores = [float(s) for s in scores]
    if len(scores) != len(objects):
        raise ValueError(f"the scoring function returned {len(scores)} scores for {len(objects)} objects; it must "
                         f"return one number per object")
    return scores


@dataclass
class CacheStats:
    lookups: int = 0
    hits: int = 0
    pooled: int = 0  # objects scored in the pool

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"lookups": self.lookups, "hits": self.hits, "hit_rate": round(self.hit_rate, 4),
                "scored_in_pool": self.pooled}


class PooledScorer:
    def __init__(self, fn: Callable[[list[Any]], Sequence[float]], *, workers: int | None = None, cache: bool = True,
                 cache_size: int = 200_000, min_pool_batch: int = 32) -> None:
        """``workers``: None = available cores, 0 or 1 = score in this process."""
        self.fn = fn
        self.workers = available_workers() if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"reward workers must be >= 0 (0 = in-process, null = all cores), got {workers}")
        self.use_cache = cache
        self.cache_size = cache_size
        self.min_pool_batch = min_pool_batch
        self.stats = CacheStats()
        self._cache: dict[Hashable, float] = {}
        self._pool: ProcessPoolExecutor | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pool"] = None  # pools do not travel; a copy makes its own when it needs one
        return state

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        try:
            self.close()
        except Exception:
            pass

    def _map(self, objects: Sequence[Any], pool: bool) -> list[float]:
        if not pool or self.workers <= 1 or len(objects) < self.min_pool_batch:
            return one_per_object(self.fn(list(objects)), objects)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("fork"))
        size = max(1, math.ceil(len(objects) / (4 * self.workers)))
        chunks = [list(objects[i:i + size]) for i in range(0, len(objects), size)]
        self.stats.pooled += len(objects)
        return [s for chunk, scores in zip(chunks, self._pool.map(self.fn, chunks))
                for s in one_per_object(scores, chunk)]

    def __call__(self, keys: Sequence[Hashable], objects: Sequence[Any], *, pool: bool = True) -> list[float]:
        """Scores of ``objects``; objects with equal ``keys`` are taken to be the same object.
        ``pool=False`` scores this call's misses in-process (objects too cheap to ship to a worker)."""
        self.stats.lookups += len(keys)
        if not self.use_cache:
            return self._map(objects, pool)
        todo: dict[Hashable, Any] = {}
        for key, obj in zip(keys, objects):
            if key not in self._cache and key not in todo:
                todo[key] = obj
        self.stats.hits += len(keys) - len(todo)
        if todo:
            scores = self._map(list(todo.values()), pool)
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(todo.keys(), scores))
            fresh = dict(zip(todo.keys(), scores))
            return [fresh[k] if k in fresh else self._cache[k] for k in keys]
        return [self._cache[k] for k in keys]
