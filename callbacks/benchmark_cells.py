"""W&B runs of ``benchmark.py``: one run per benchmark row (table cell or scaling point), all in one group;
offline unless the user configured W&B (as for decode.py), under ``output_dir/wandb/``."""

from __future__ import annotations

import os
import time
from pathlib import Path

WANDB_PROJECT = "svdd-lightning-benchmark"


class CellLogger:
    """One W&B run per benchmark row (table cell or scaling point), all in one group; offline
    unless the user configured W&B (as for decode.py), under ``output_dir/wandb/``."""

    def __init__(self, kind: str, out: Path, *, mode: str) -> None:
        self.out, self.mode, self.enabled = out, mode, kind == "wandb"
        self.group = f"{out.resolve().name}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.offline = False
        self.count = 0
        if self.enabled:
            from svdd_lightning.loggers import wandb_configured

            self.offline = not wandb_configured()
            if self.offline:
                os.environ["WANDB_MODE"] = "offline"
            os.environ.setdefault("WANDB_SILENT", "true")

    def meta(self) -> dict | None:
        if not self.enabled:
            return None
        return {"project": WANDB_PROJECT, "group": self.group, "offline": self.offline, "runs": self.count}

    def log(self, row: dict, part: str) -> None:
        if not self.enabled:
            return
        import wandb

        from callbacks.wandb_offline import finish_and_flush

        name = f"{row['domain']}-{row['reward']}-{row['decoder']}" + (f"-b{row['budget']}" if part == "scaling" else "")
        config = {"domain": row["domain"], "reward": row["reward"], "decoder": row["decoder"],
                  "budget": row["budget"], "num_candidates": row.get("num_candidates", row["budget"]),
                  "seed": row["seed"], "num_samples": row["num_samples"], "batch_size": row["batch_size"],
                  "part": part, "mode": self.mode}
        try:
            run = wandb.init(project=WANDB_PROJECT, group=self.group, job_type=part, name=name, dir=str(self.out),
                             config=config, reinit="finish_previous")
            if row["status"] != "ok":  # skipped or failed: svdd_lightning/tasks/benchmark_rows.py
                run.summary.update({"status": row["status"], "reason": row["reason"]})
            else:
                run.log({"reward/histogram": wandb.Histogram(row["rewards"]), "reward/count": len(row["rewards"])})
                # calls: the record of summary.json (absent from cells an older version finished)
                run.summary.update({k: row[k] for k in ("median", "q90", "mean", "median_ci", "q90_ci", "calls",
                                                        "calls_per_sample", "wall_seconds",
                                                        "wall_seconds_per_sample", "naturalness") if k in row})
            finish_and_flush(run)  # the file whole before the next cell, and before the benchmark exits
            self.count += 1
        except Exception as exc:  # noqa: BLE001 - a logging failure must not lose the benchmark
            print(f"W&B logging failed ({type(exc).__name__}: {exc}); the benchmark goes on without it", flush=True)
            self.enabled = False

    def hint(self) -> str | None:
        if not (self.enabled and self.offline and self.count):
            return None
        return f"{self.count} W&B runs saved offline (group {self.group}); upload them with: " \
               f"wandb sync {self.out / 'wandb'}/offline-run-*"
