"""Bootstrap intervals for per-sample rewards, and an interval-aware comparison of two methods.

``bootstrap_ci(rewards, "median")`` is scipy.stats.bootstrap's percentile interval (2,000
resamples, a fixed seed, so the same rewards always give the same interval). Two cells are
ordered only where their intervals do not overlap: non-overlap of two 95% intervals is a
conservative test (it implies a difference at roughly the 0.5% level), and overlap does not show
that the two are equal, only that these samples cannot tell them apart.

The resampling treats samples as independent. For population decoders (SMC, SVDD-R), samples of
one batch interact, so their intervals understate the run-to-run spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
BOOTSTRAP = {"method": "percentile", "confidence_level": CONFIDENCE, "n_resamples": N_RESAMPLES, "seed": SEED,
             "library": "scipy.stats.bootstrap"}

BEATS, BEATEN, TIED = "beats", "is beaten by", "not distinguishable"


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _q90(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.quantile(x, 0.9, axis=axis)  # numpy's default (linear), as summary.json's q90


STATISTICS = {"median": _median, "q90": _q90}


def point(values: Sequence[float], statistic: str = "median") -> float:
    return float(STATISTICS[statistic](np.asarray(values, dtype=float)))


def bootstrap_ci(values: Sequence[float], statistic: str = "median", *, confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> list[float]:
    """[lo, hi]: the percentile bootstrap interval of ``statistic`` ("median" or "q90") over ``values``.

    One value gives the degenerate interval [x, x] (there is nothing to resample)."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if x.size == 1 or np.all(x == x[0]):
        return [float(x[0]), float(x[0])]
    res = bootstrap((x,), STATISTICS[statistic], method="percentile", n_resamples=n_resamples,
                    confidence_level=confidence, vectorized=True, rng=np.random.default_rng(seed))
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def reward_intervals(values: Sequence[float]) -> dict[str, list[float]]:
    """``median_ci`` and ``q90_ci`` of one cell's per-sample rewards."""
    return {"median_ci": bootstrap_ci(values, "median"), "q90_ci": bootstrap_ci(values, "q90")}


def intervals_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when the closed intervals [a0, a1] and [b0, b1] share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def compare(a: Sequence[float], b: Sequence[float]) -> str:
    """'beats' when interval a lies wholly above b, 'is beaten by' when wholly below, else
    'not distinguishable'."""
    if intervals_overlap(a, b):
        return TIED
    return BEATS if a[0] > b[1] else BEATEN
