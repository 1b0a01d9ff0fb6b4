"""One benchmark cell at a time: a decode through decode.py's own code path (in-process, one composed Hydra
config, ``logger=none``) turned into a row, cells a stopped run finished or left shards for picked up again, and
the scaling comparison's points."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

from svdd_lightning.tasks.benchmark_plan import (Mode, budget_options, compose_decode, per_sample_costs,
                                                 scaling_plan, search_path_override, single_point)
from svdd_lightning.tasks.benchmark_report import fmt, fmt_ci, read_rewards, with_intervals
from svdd_lightning.tasks.benchmark_rows import SKIPPED, decoded, failed, is_ok, skipped

CELL_FILE = "cell.json"  # written once a cell's decode finished: the settings it ran with


def finished_cell(run_dir: Path, fingerprint: dict) -> dict | None:
    """The summary of a cell an earlier (stopped) benchmark finished with the same settings, else None."""
    marker, summary = run_dir / CELL_FILE, run_dir / "summary.json"
    if not (marker.is_file() and summary.is_file() and (run_dir / "samples.csv").is_file()):
        return None
    stored = json.loads(marker.read_text()).get("fingerprint")
    return json.loads(summary.read_text()) if stored == json.loads(json.dumps(fingerprint, default=str)) else None


def resumable_cell(run_dir: Path, fingerprint: dict) -> bool:
    """Whether run_dir holds the shards of a stopped decode of these settings (decode.py resumes them)."""
    from svdd_lightning.runs import FINGERPRINT

    stored = run_dir / ".shards" / FINGERPRINT
    return not (run_dir / "summary.json").exists() and stored.is_file() and json.loads(stored.read_text()) == fingerprint


def raised(cell: dict, exc: BaseException, run_dir: Path) -> dict:
    """The failed row of a run that raised unexpectedly, its traceback appended to the run's decode.log."""
    import traceback

    with open(run_dir / "decode.log", "a") as log:
        traceback.print_exception(exc, file=log)
    message = str(exc).strip().splitlines()
    return failed(cell, f"{type(exc).__name__}: {' '.join(message)[:300]} (see {run_dir / 'decode.log'})")


def run_one(*, domain: str, reward: str, decoder: str, num_samples: int, batch_size: int, num_candidates: int,
            seed: int, run_dir: Path, search_path: Sequence[str] = (), more_options: Sequence[str] = ()) -> dict:
    """One decode.py run: a decoded row (its summary plus the per-sample rewards), a skipped row (the method
    cannot run on this cell) or a failed row (it raised). ``more_options``: more decode.py options, after the cell's
    (benchmarks/ehrlich.py: the function's preset and the decoder's budget shape)."""
    from hydra.errors import InstantiationException

    from omegaconf import open_dict

    from svdd_lightning.tasks.decode import run_decode
    from svdd_lightning.atomic import atomic_write_text
    from svdd_lightning.errors import SVDDError
    from svdd_lightning.runs import run_fingerprint
    from svdd_lightning.stopping import StopRequested

    overrides = [f"domain={domain}", f"reward={reward}", f"decoder={decoder}", f"num_samples={num_samples}",
                 f"batch_size={batch_size}", f"seed={seed}",
                 *([] if single_point(decoder, search_path) else budget_options(decoder, num_candidates)),
                 f"output_dir={run_dir}", "logger=none", "trainer.enable_progress_bar=false",
                 *search_path_override(search_path), *more_options]
    row = {"domain": domain, "reward": reward, "decoder": decoder, "budget": num_candidates,
           "num_samples": num_samples, "batch_size": batch_size, "seed": seed}
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        cfg = compose_decode(overrides)
        fraction = cfg.decoder.get("resample_fraction")
        if fraction is not None and 0 < fraction and round(fraction * batch_size) == 0:
            # SVDD-R would resample no member of so small a batch: it would repeat SVDD-PM's run.
            return skipped(row, f"a batch of {batch_size} is too small for {decoder}'s resampling "
                                f"(round({fraction} x {batch_size}) = 0 members): it would repeat svdd_pm")
        fingerprint = run_fingerprint(cfg)
        summary = finished_cell(run_dir, fingerprint)
        if summary is None:
            with open_dict(cfg):
                # a cell stopped partway with these settings resumes from its shards; anything else starts over
                cfg.overwrite = not resumable_cell(run_dir, fingerprint)
            # decode.py's report goes to the run's own log; the benchmark prints one line per run.
            with open(run_dir / "decode.log", "a") as log, contextlib.redirect_stdout(log):
                summary = run_decode(cfg)
            atomic_write_text(run_dir / CELL_FILE, json.dumps({"fingerprint": fingerprint}, default=str) + "\n")
    except StopRequested:  # SIGTERM / Ctrl-C: the benchmark stops; finished cells and this cell's shards stay
        raise
    except SVDDError as exc:  # e.g. no SVDD-MC value shipped for this reward
        return skipped(row, str(exc))
    except InstantiationException as exc:  # a constructor refused, e.g. DPS without any gradient
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (SVDDError, ValueError)):
            return skipped(row, str(cause))
        return raised(row, exc, run_dir)
    except Exception as exc:  # noqa: BLE001 - one broken cell must not lose the others' results
        return raised(row, exc, run_dir)
    rewards = read_rewards(run_dir)
    stats = summary["reward_stats"]
    return with_intervals(decoded(row, **{
        "num_samples": summary["num_samples"],
        "num_candidates": summary["num_candidates"],
        "median": stats["median"], "q90": stats["q90"], "mean": stats["mean"],
        # The one record of calls (svdd_lightning/calls.py), as in summary.json and W&B; calls_per_sample (asked)
        # and made_calls_per_sample are its older spellings here, kept one release for readers of benchmark.json.
        "calls": summary["calls"],
        "nfe": summary["nfe_per_sample"],
        **per_sample_costs(summary),
        "wall_seconds": summary["wall_seconds"],
        "naturalness": summary["naturalness"],
        "settings": summary.get("decoder_settings", {}),
        "rewards": rewards,
        "output_dir": str(run_dir),
    }))


def shown(row: dict) -> str:
    if not is_ok(row):
        return f"{row['status']} ({row['reason']})"
    calls = row["calls_per_sample"]["total"]
    return (f"median {fmt_ci(row['median'], row['median_ci'])}, q90 {fmt(row['q90'])}, {calls:.0f} calls and "
            f"{row['wall_seconds_per_sample']:.3g} s per sample")


def not_run(row: dict) -> str:
    """Why the later points of a method that did not run here are skipped."""
    return row["reason"] if row["status"] == SKIPPED else f"its run at budget {row['budget']} failed: {row['reason']}"


def run_scaling(mode: Mode, decoders: list[str], rows: list[dict], *, seed: int, out: Path, run=None,
                on_row=None, search_path: Sequence[str] = ()) -> list[dict]:
    """The scaling rows: every method of ``decoders`` at each budget (one point at budget 1 for
    pre-trained and DPS). A method the table could not run is skipped at every budget with its reason;
    one whose calls per sample do not grow with the budget (it ignores decoder.num_candidates) is
    skipped from there on rather than run again; a table row with the point's samples, batch and
    budget is that point (not decoded twice). ``run`` is run_one (a test may pass another)."""
    run = run or run_one
    plan = scaling_plan(mode, decoders, search_path)
    single = {dec: single_point(dec, search_path) for dec in decoders}
    skip = {(r["domain"], r["reward"], r["decoder"]): not_run(r) for r in rows if not is_ok(r)}
    table = {(r["domain"], r["reward"], r["decoder"]): r for r in rows if is_ok(r)}
    last_calls: dict[tuple, tuple[int, float]] = {}
    scaling = []
    for i, (domain, reward, decoder, budget) in enumerate(plan, 1):
        key = (domain, reward, decoder)
        tic = time.perf_counter()
        same = table.get(key)
        if key in skip:
            row = skipped({"domain": domain, "reward": reward, "decoder": decoder, "budget": budget,
                           "num_samples": mode.scaling_samples, "batch_size": mode.scaling_batch_size,
                           "seed": seed}, skip[key])
        elif same is not None and (same["num_samples"], same["batch_size"]) == \
                (mode.scaling_samples, mode.scaling_batch_size) and \
                (same["budget"] == budget or single[decoder]):
            row = {**same, "budget": budget, "reused": "the table's run (same samples and settings)"}
        else:
            row = run(domain=domain, reward=reward, decoder=decoder, num_samples=mode.scaling_samples,
                      batch_size=mode.scaling_batch_size, num_candidates=budget, seed=seed,
                      run_dir=out / "runs" / f"scaling-{domain}-{reward}-{decoder}-b{budget}",
                      **({"search_path": search_path} if search_path else {}))
        if key not in skip:
            if not is_ok(row):
                skip[key] = not_run(row)
            else:
                calls = row["calls_per_sample"]["total"]
                if key in last_calls and calls <= last_calls[key][1]:
                    reason = (f"{decoder} ignores decoder.num_candidates: budget {budget} cost the same "
                              f"{calls:.0f} calls per sample as budget {last_calls[key][0]}")
                    skip[key] = reason
                    row = skipped(row, reason)
                else:
                    last_calls[key] = (budget, calls)
        scaling.append(row)
        if on_row is not None:
            on_row(row)
        print(f"[scaling {i}/{len(plan)}] {domain}/{reward} {decoder} budget {budget}: {shown(row)} "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
    return scaling
