"""A benchmark row: one cell of the table or one point of the scaling comparison, of one of three kinds, its
``status``:

- ``ok``: decoded; it carries the reward statistics with their intervals, the calls, the naturalness metrics,
  and in memory the per-sample rewards (they stay in the run's samples.csv, not in benchmark.json);
- ``skipped``: the method cannot run here (no SVDD-MC value shipped for the reward, DPS without a gradient, a
  batch too small to resample); ``reason`` says why, and the report shows it in the method's cell;
- ``failed``: the run raised unexpectedly; ``reason`` names the error and the log holding its traceback, the
  other cells still run, and the benchmark exits non-zero.

Rows stay plain dicts so that benchmark.json stays a plain JSON file; the functions here make and read them, and
:func:`read_row` is the one reader of rows that older versions wrote."""

from __future__ import annotations

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
CELL_KEYS = ("domain", "reward", "decoder", "budget", "num_samples", "batch_size", "seed")


def skipped(cell: dict, reason: str) -> dict:
    """A row for a method that cannot run on this cell, with the reason shown in the report."""
    return {**cell_of(cell), "status": SKIPPED, "reason": reason}


def failed(cell: dict, reason: str) -> dict:
    """A row for a run that raised unexpectedly."""
    return {**cell_of(cell), "status": FAILED, "reason": reason}


def decoded(cell: dict, **results) -> dict:
    """A row for a run that decoded: the cell's settings and what it measured."""
    return {**cell, **results, "status": OK}


def cell_of(row: dict) -> dict:
    """The settings that name a cell (domain, reward, decoder, budget, samples, batch, seed), without results."""
    return {k: row[k] for k in CELL_KEYS if k in row}


def is_ok(row: dict) -> bool:
    return row["status"] == OK


def is_failed(row: dict) -> bool:
    return row["status"] == FAILED


def read_row(row: dict, *, default_budget: int) -> dict:
    """A row of a benchmark.json as this version writes it. Older files (before rows had a ``status``) mark a
    skipped or failed row with a ``skipped`` reason (and ``failed: true``), give calls only as ``nfe`` and may lack
    the wall time per sample and the budget; ``default_budget`` is the file's M for rows without one."""
    row = dict(row)
    if "status" not in row:
        reason = row.pop("skipped", None)
        row["status"] = OK if reason is None else FAILED if row.pop("failed", False) else SKIPPED
        if reason is not None:
            row["reason"] = reason
    row.setdefault("budget", row.get("num_candidates", default_budget))
    if is_ok(row):
        if "calls_per_sample" not in row:
            calls = {k: float(v) for k, v in row["nfe"].items()}
            row["calls_per_sample"] = {**calls, "total": sum(calls.values())}
        row.setdefault("wall_seconds_per_sample", row["wall_seconds"] / row["num_samples"])
    return row
