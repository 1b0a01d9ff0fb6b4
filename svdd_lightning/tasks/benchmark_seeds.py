"""Several seeds per benchmark cell (``benchmark.py --seeds 0 1 2``): each seed is its own decode (its own run
folder, finished and resumed like any cell), and the cell's row pools their samples.

Why seeds and not one larger run: SMC and SVDD-R couple the samples of a batch, so a bootstrap over one run's
samples treats dependent samples as independent. Independent seeds give the spread a user sees from rerunning,
reported beside the pooled bootstrap interval (``seed_medians``, ``seed_spread``)."""

from __future__ import annotations

import statistics

import numpy as np

from svdd_lightning.tasks.benchmark_rows import FAILED, SKIPPED


def seed_dir_name(name: str, seed: int, seeds: list[int]) -> str:
    """A cell's run folder for one seed: the single-seed name unchanged (earlier runs resume), ``-seedS`` else."""
    return name if len(seeds) == 1 else f"{name}-seed{seed}"


def pooled_row(rows: list[dict]) -> dict:
    """One row for a cell from its per-seed rows: the samples pooled (statistics and bootstrap intervals are
    computed by the caller from ``rewards``), calls per sample averaged over seeds (they are the same budget),
    wall seconds summed, naturalness metrics averaged over seeds; a failed or skipped seed makes the cell so."""
    first = rows[0]
    for status in (FAILED, SKIPPED):
        bad = [r for r in rows if r["status"] == status]
        if bad:
            return {**bad[0], "seeds": [r["seed"] for r in rows]}
    if len(rows) == 1:
        return {**first, "seeds": [first["seed"]]}
    rewards = [x for r in rows for x in r["rewards"]]
    medians = [r["median"] for r in rows]

    def mean_of(key: str) -> dict:
        keys = [k for k in rows[0][key] if all(isinstance(r[key].get(k), (int, float)) for r in rows)]
        return {k: statistics.fmean(float(r[key][k]) for r in rows) for k in keys}

    wall = sum(r["wall_seconds"] for r in rows)
    return {
        **first,
        "seed": first["seed"],
        "seeds": [r["seed"] for r in rows],
        "num_samples": len(rewards),
        "rewards": rewards,
        "median": statistics.median(rewards),
        "mean": statistics.fmean(rewards),
        # q90 as summary.json computes it (numpy's linear quantile)
        "q90": float(np.quantile(rewards, 0.9)),
        "seed_medians": medians,
        "seed_spread": {"min": min(medians), "max": max(medians), "sd": statistics.stdev(medians)},
        "calls_per_sample": mean_of("calls_per_sample"),
        "made_calls_per_sample": mean_of("made_calls_per_sample"),
        "wall_seconds": wall,
        "wall_seconds_per_sample": wall / len(rewards),
        "naturalness": mean_of("naturalness"),
        "output_dir": [r["output_dir"] for r in rows],
        "calls": [r["calls"] for r in rows],
    }

