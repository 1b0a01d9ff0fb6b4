"""Regenerate the paper's comparison (Table 1) on all four domains with one command, with error bars
and an inference-time scaling comparison.

    python benchmark.py --quick --output_dir DIR     # the four default tasks, small runs (minutes on a laptop)
    python benchmark.py --output_dir DIR             # every task, the acceptance-size runs
    python benchmark.py --report_only --output_dir DIR   # redraw the report and plots of a finished run

Runs pretrained, best_of_n, dps, smc, svdd_mc, svdd_pm and svdd_r through decode.py's own code
path (in-process, one composed Hydra config per run, ``logger=none``) and writes to DIR:

- ``benchmark.json``: ``rows``, one per (domain, reward, decoder) at the mode's M, with median and
  q90 and their 95% bootstrap intervals (``median_ci``, ``q90_ci``: scipy.stats.bootstrap,
  percentile method, 2,000 resamples, a fixed seed), ``calls_per_sample`` {denoiser, value,
  reward, total} (asked for: the budget), ``made_calls_per_sample`` (sent, after deduplication), ``wall_seconds``, ``wall_seconds_per_sample`` and the domain's naturalness
  metrics; ``scaling``, the same per (domain, reward, decoder, budget) for budgets 1, 2, 4, 8,
  16 (quick mode: 1, 2, 4) passed as ``decoder.num_candidates``; ``checks``, the interval-aware
  ordering checks. Runs that cannot be made (no SVDD-MC value shipped for that reward) are rows
  with ``skipped``, never left out;
- ``benchmark.md``: tables shaped like the paper's Table 1 (median and q90 with intervals), the
  ordering checks, per-task detail (naturalness, calls, wall time) and the scaling tables;
- ``boxplots.png`` (rewards per method), ``scaling_<domain>_<reward>.png`` (median reward with its
  95% interval against wall seconds and against calls per sample, one line per method, points
  labelled with their budget) and ``ablation_m.png`` (SVDD-PM against Best-of-N over M, drawn
  from the scaling rows of the ablation task: nothing runs twice);
- ``runs/``: each run's decode.py outputs; ``wandb/``: with ``--logger wandb`` (the default;
  offline unless W&B is configured), one W&B run per row, all in one group.

Best-of-N is matched to SVDD-PM's denoiser calls: N = M chains cost T * M calls per sample,
SVDD-PM 1 + (T - 1) * M (it reuses the chosen candidate's denoiser output).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from callbacks.benchmark_cells import WANDB_PROJECT, CellLogger  # noqa: F401  (WANDB_PROJECT: tests read it)
from svdd_lightning.atomic import atomic_path, atomic_write_text
from svdd_lightning.stats import BEATEN, BEATS, BOOTSTRAP, TIED, compare, reward_intervals
from svdd_lightning.tasks.benchmark_plan import (ALL_TASKS, COLOURS, DECODERS, DEFAULT_TASKS,  # noqa: F401
                                                 compose_decode, known_decoders, methods, per_sample_costs,
                                                 search_path_override, single_point)

REPO = Path(__file__).resolve().parent
# The naturalness metrics shown per domain in the summary table (all of them are in the JSON and
# the per-task tables).
HEADLINE_NATURALNESS = {"dna": ("kmer3_correlation", "unique_fraction"), "rna": ("kmer3_correlation", "unique_fraction"),
                        "molecule": ("uniqueness", "internal_diversity"), "image": ("digit_rate", "frechet_distance")}


@dataclass(frozen=True)
class Mode:
    name: str
    tasks: tuple[tuple[str, str], ...]
    num_samples: int  # per table cell
    batch_size: int  # the population of SMC / SVDD-R
    num_candidates: int  # M of the table
    scaling_budgets: tuple[int, ...]  # decoder.num_candidates of the scaling comparison
    scaling_samples: int  # per scaling point
    scaling_batch_size: int
    ablation_task: tuple[str, str]  # ablation_m.png: SVDD-PM against Best-of-N over M, from its scaling rows
    # The tasks of the scaling comparison (the four default ones: the others double its time).
    scaling_tasks: tuple[tuple[str, str], ...] = tuple(DEFAULT_TASKS)


# Quick mode's scaling stops at budget 4: budgets 8 and 16 took 6 of its 12 minutes (18 in all) on 2 CPU cores.
QUICK = Mode(name="quick", tasks=tuple(DEFAULT_TASKS), num_samples=24, batch_size=24, num_candidates=5,
             scaling_budgets=(1, 2, 4), scaling_samples=8, scaling_batch_size=8,
             ablation_task=("dna", "hepg2_motif"))
FULL = Mode(name="full", tasks=tuple(ALL_TASKS), num_samples=256, batch_size=64, num_candidates=10,
            scaling_budgets=(1, 2, 4, 8, 16), scaling_samples=64, scaling_batch_size=64,
            ablation_task=("dna", "hepg2_motif"))


def mode_from(data: dict) -> Mode:
    """The Mode recorded in a benchmark.json (older files lack the scaling fields: the named mode's)."""
    base = QUICK if data.get("name") == "quick" else FULL
    known = {f.name for f in fields(Mode)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("tasks", "scaling_tasks"):
        if key in values:
            values[key] = tuple(tuple(t) for t in values[key])
    for key in ("ablation_task", "scaling_budgets"):
        if key in values:
            values[key] = tuple(values[key])
    return replace(base, **values)


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


def read_rewards(run_dir: Path) -> list[float]:
    """Per-sample rewards of one decode run, from its samples.csv."""
    with open(run_dir / "samples.csv", newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


def complete_row(row: dict) -> dict:
    """Add the bootstrap intervals (from ``rewards``) and, for rows of older benchmark.json files,
    calls and wall time per sample (from ``nfe``)."""
    if "skipped" in row:
        return row
    row.update(reward_intervals(row["rewards"]))
    if "calls_per_sample" not in row:
        calls = {k: float(v) for k, v in row["nfe"].items()}
        row["calls_per_sample"] = {**calls, "total": sum(calls.values())}
    row.setdefault("wall_seconds_per_sample", row["wall_seconds"] / row["num_samples"])
    return row


def failed(row: dict, exc: BaseException, run_dir: Path) -> dict:
    """A row for a run that raised unexpectedly: shown as skipped with the error, its traceback in the
    run's decode.log, and the benchmark exits non-zero at the end."""
    import traceback

    with open(run_dir / "decode.log", "a") as log:
        traceback.print_exception(exc, file=log)
    message = str(exc).strip().splitlines()
    return {**row, "skipped": f"FAILED: {type(exc).__name__}: {' '.join(message)[:300]} (see {run_dir / 'decode.log'})",
            "failed": True}


def beam_shape(budget: int) -> tuple[int, int]:
    """(A paths, K children) of beam search at budget M with A x K = M (SVDD-PM's candidates per step): A = 4 where
    4 divides M and leaves K >= 2, else the divisor nearest 4 that does (M = 10: 5 x 2; M = 4: 2 x 2; M = 2: 1 x 2,
    which is SVDD). K = 1 would keep every child: Best-of-A, no search."""
    divisors = [a for a in range(1, budget + 1) if budget % a == 0 and (budget // a >= 2 or budget == 1)]
    paths = min(divisors, key=lambda a: (abs(a - 4), -a))
    return paths, budget // paths


def budget_options(decoder: str, budget: int) -> list[str]:
    """decode.py options that spend ``budget`` candidates per step and sample."""
    if decoder == "beam":
        paths, children = beam_shape(budget)
        return [f"decoder.beams={paths}", f"decoder.num_candidates={children}"]
    return [f"decoder.num_candidates={budget}"]


def run_one(*, domain: str, reward: str, decoder: str, num_samples: int, batch_size: int, num_candidates: int,
            seed: int, run_dir: Path, search_path: Sequence[str] = ()) -> dict:
    """One decode.py run; returns its summary plus the per-sample rewards, or a 'skipped' row."""
    from hydra.errors import InstantiationException

    from omegaconf import open_dict

    from decode import run_decode  # the one script a script still imports (tests/test_package.py)
    from svdd_lightning.atomic import atomic_write_text
    from svdd_lightning.errors import SVDDError
    from svdd_lightning.runs import run_fingerprint
    from svdd_lightning.stopping import StopRequested

    overrides = [f"domain={domain}", f"reward={reward}", f"decoder={decoder}", f"num_samples={num_samples}",
                 f"batch_size={batch_size}", f"seed={seed}",
                 *([] if single_point(decoder, search_path) else budget_options(decoder, num_candidates)),
                 f"output_dir={run_dir}", "logger=none", "trainer.enable_progress_bar=false",
                 *search_path_override(search_path)]
    row = {"domain": domain, "reward": reward, "decoder": decoder, "budget": num_candidates,
           "num_samples": num_samples, "batch_size": batch_size, "seed": seed}
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        cfg = compose_decode(overrides)
        fraction = cfg.decoder.get("resample_fraction")
        if fraction is not None and 0 < fraction and round(fraction * batch_size) == 0:
            # SVDD-R would resample no member of so small a batch: it would repeat SVDD-PM's run.
            return {**row, "skipped": f"a batch of {batch_size} is too small for {decoder}'s resampling "
                                      f"(round({fraction} x {batch_size}) = 0 members): it would repeat svdd_pm"}
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
        return {**row, "skipped": str(exc)}
    except InstantiationException as exc:  # a constructor refused, e.g. DPS without any gradient
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (SVDDError, ValueError)):
            return {**row, "skipped": str(cause)}
        return failed(row, exc, run_dir)
    except Exception as exc:  # noqa: BLE001 - one broken cell must not lose the others' results
        return failed(row, exc, run_dir)
    rewards = read_rewards(run_dir)
    stats = summary["reward_stats"]
    return complete_row({
        **row,
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
    })


def fmt(x: float) -> str:
    if x != 0 and abs(x) < 0.001:
        return f"{x:.1e}"  # log-probabilities near 0 (the digit reward)
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def fmt_ci(estimate: float, ci) -> str:
    """``0.898 [0.871, 0.912]``: a point estimate and its 95% interval."""
    return f"{fmt(estimate)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def find(rows: list[dict], domain: str, reward: str, decoder: str) -> dict | None:
    return next((x for x in rows if (x["domain"], x["reward"], x["decoder"]) == (domain, reward, decoder)), None)


def table1(rows: list[dict], tasks, stat: str = "median") -> list[str]:
    """Table 1's shape: one line per task, one column per method, ``stat`` with its 95% interval."""
    columns = methods(rows)
    lines = ["| Task | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for domain, reward in tasks:
        cells = []
        for dec in columns:
            r = find(rows, domain, reward, dec)
            cells.append("n/a" if r is None or "skipped" in r else fmt_ci(r[stat], r[f"{stat}_ci"]))
        lines.append(f"| {domain} / {reward} | " + " | ".join(cells) + " |")
    return lines


def naturalness_table(rows: list[dict], tasks) -> list[str]:
    columns = methods(rows)
    lines = ["| Task (metrics) | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for domain, reward in tasks:
        keys = HEADLINE_NATURALNESS.get(domain, ())
        cells = []
        for dec in columns:
            r = find(rows, domain, reward, dec)
            if r is None or "skipped" in r:
                cells.append("n/a")
            else:
                cells.append(" / ".join(fmt(r["naturalness"][k]) if k in r["naturalness"] else "-" for k in keys))
        lines.append(f"| {domain} / {reward} ({' / '.join(keys)}) | " + " | ".join(cells) + " |")
    return lines


def calls_text(calls: dict) -> str:
    return f"{calls['denoiser']:.0f} / {calls['value']:.0f} / {calls['reward']:.0f} / {calls['total']:.0f}"


def task_detail(rows: list[dict], domain: str, reward: str) -> list[str]:
    mine = [r for r in rows if (r["domain"], r["reward"]) == (domain, reward)]
    nat_keys = sorted({k for r in mine if "naturalness" in r for k in r["naturalness"] if not k.endswith("_median")})
    lines = [f"### {domain} / {reward}", "",
             "| method | median [95% CI] | q90 [95% CI] | " + " | ".join(nat_keys) +
             " | calls per sample (denoiser / value / reward / total) | wall s | wall s per sample |",
             "|---|---|---|" + "---|" * len(nat_keys) + "---|---|---|"]
    for r in mine:
        if "skipped" in r:
            lines.append(f"| {r['decoder']} | skipped: {r['skipped']} | |" + " |" * len(nat_keys) + " | | |")
            continue
        nat = " | ".join(fmt(r["naturalness"][k]) if k in r["naturalness"] else "" for k in nat_keys)
        note = f" ({r['settings']['guided_by']})" if "guided_by" in r.get("settings", {}) else ""
        lines.append(f"| {r['decoder']}{note} | {fmt_ci(r['median'], r['median_ci'])} | {fmt_ci(r['q90'], r['q90_ci'])} "
                     f"| {nat} | {calls_text(r['calls_per_sample'])} | {r['wall_seconds']:.1f} | "
                     f"{r['wall_seconds_per_sample']:.3g} |")
    return lines + [""]


NAMES = {"pretrained": "pre-trained", "best_of_n": "Best-of-N", "svdd_pm": "SVDD-PM"}
# The paper's shape, as (method, statistic) pairs where the first should beat the second.
CLAIMS = ((("svdd_pm", "median"), ("best_of_n", "median")),
          (("best_of_n", "median"), ("pretrained", "median")),
          (("svdd_pm", "median"), ("pretrained", "q90")))


def ordering_checks(rows: list[dict], tasks) -> list[dict]:
    """SVDD-PM > Best-of-N > pre-trained in median, and SVDD-PM median above the pre-trained q90, per
    task, read from the 95% bootstrap intervals: a method 'beats' another only where the intervals do
    not overlap; overlapping intervals are 'not distinguishable'. A task's verdict is 'holds' when every
    comparison beats, 'does not hold' when one is beaten, else 'not distinguishable'."""
    checks = []
    for domain, reward in tasks:
        get = {r["decoder"]: r for r in rows if (r["domain"], r["reward"]) == (domain, reward) and "skipped" not in r}
        if not all(k in get for k in ("pretrained", "best_of_n", "svdd_pm")):
            continue
        comparisons, parts = [], []
        for (a, sa), (b, sb) in CLAIMS:
            ra, rb = get[a], get[b]
            result = compare(ra[f"{sa}_ci"], rb[f"{sb}_ci"])
            comparisons.append({"a": f"{a} {sa}", "b": f"{b} {sb}", "result": result,
                                "a_ci": ra[f"{sa}_ci"], "b_ci": rb[f"{sb}_ci"]})
            parts.append(f"{NAMES[a]} {sa} {fmt_ci(ra[sa], ra[f'{sa}_ci'])} {result} "
                         f"{NAMES[b]} {sb} {fmt_ci(rb[sb], rb[f'{sb}_ci'])}")
        results = [c["result"] for c in comparisons]
        verdict = "holds" if all(x == BEATS for x in results) else \
            "does not hold" if BEATEN in results else TIED
        checks.append({"task": f"{domain}/{reward}", "verdict": verdict, "holds": verdict == "holds",
                       "comparisons": comparisons, "detail": "; ".join(parts)})
    return checks


def savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_boxes(path: Path, rows: list[dict], tasks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(tasks))
    rows_n = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 4.2 * rows_n), dpi=110, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, (domain, reward) in zip(axes.flat, tasks):
        done = [r for dec in methods(rows) for r in rows
                if (r["domain"], r["reward"], r["decoder"]) == (domain, reward, dec) and "skipped" not in r]
        ax.boxplot([r["rewards"] for r in done], tick_labels=[r["decoder"] for r in done], showfliers=True)
        ax.set_title(f"{domain} / {reward}")
        ax.set_ylabel(f"{reward} reward (higher is better)")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)


def scaling_series(scaling: list[dict], domain: str, reward: str, decoder: str) -> list[dict]:
    return sorted((r for r in scaling if (r["domain"], r["reward"], r["decoder"]) == (domain, reward, decoder)
                   and "skipped" not in r), key=lambda r: r["budget"])


def error_bars(points: list[dict]):
    """matplotlib yerr from median_ci (clipped at 0: a percentile interval may sit beside its estimate)."""
    return [[max(0.0, p["median"] - p["median_ci"][0]) for p in points],
            [max(0.0, p["median_ci"][1] - p["median"]) for p in points]]


def log_ticks(ax) -> None:
    """Plain-number ticks at 1, 2, 5 x 10^k on a log x-axis (matplotlib's would read 2 x 10^-1)."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)

    def at(mantissas):
        return [m * 10.0 ** k for k in decades for m in mantissas if lo * (1 - 1e-9) <= m * 10.0 ** k <= hi * (1 + 1e-9)]

    # The coarsest set with 3 to 8 ticks: powers of ten over many decades, finer steps over less than one.
    options = [at(m) for m in ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 5, 7),
                               (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8), [1 + i / 10 for i in range(90)])]
    ticks = next((t for t in options if 3 <= len(t) <= 8), None) or \
        max((t for t in options if len(t) <= 8), key=len) or [lo, hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v >= 1000 else f"{v:.3g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def plot_scaling(path: Path, scaling: list[dict], domain: str, reward: str) -> None:
    """Median reward (95% interval as error bars) against wall seconds and against total calls per
    sample, log-x, one line per method, each point labelled with its budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.0, 5.2), dpi=110, sharey=True)
    axes_x = (("wall_seconds_per_sample", "wall-clock seconds per sample (this machine)"),
              ("calls_total", "calls per sample (denoiser + value + reward; methods dodged 2% apart)"))
    samples = sorted({r["num_samples"] for r in scaling
                      if (r["domain"], r["reward"]) == (domain, reward) and "skipped" not in r})
    for ax, (key, label) in zip(axes, axes_x):
        order = methods(scaling)
        for dec in order:
            pts = scaling_series(scaling, domain, reward, dec)
            if not pts:
                continue
            xs = [p["calls_per_sample"]["total"] if key == "calls_total" else p[key] for p in pts]
            if key == "calls_total":  # methods often share a call count: dodge them apart a little
                xs = [x * (1 + 0.02 * (order.index(dec) - 3)) for x in xs]
            ys = [p["median"] for p in pts]
            colour = COLOURS.get(dec)
            single = len(pts) == 1
            ax.errorbar(xs, ys, yerr=error_bars(pts), color=colour, marker="s" if single else "o",
                        markersize=6 if single else 4, linestyle="none" if single else "-", capsize=3,
                        linewidth=1.4, label=dec)
            for x, y, p in zip(xs, ys, pts):
                ax.annotate(str(p["budget"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=colour)
        ax.set_xscale("log")
        log_ticks(ax)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"median {reward} reward, 95% interval")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8, frameon=False,
               title="method (numbers beside points: budget)", title_fontsize=8)
    shown = "/".join(str(n) for n in samples)
    fig.suptitle(f"Inference-time scaling, {domain} / {reward}: budget = decoder.num_candidates "
                 f"({shown} samples per point; higher and further left is better)", fontsize=10)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    savefig(fig, path)
    plt.close(fig)


def plot_ablation(path: Path, scaling: list[dict], task: tuple[str, str]) -> bool:
    """SVDD-PM against Best-of-N over M (equal denoiser calls), from the scaling rows of ``task``."""
    series = {dec: scaling_series(scaling, *task, dec) for dec in ("svdd_pm", "best_of_n")}
    if not all(series.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    for dec, label, colour in (("svdd_pm", "SVDD-PM (M candidates)", "tab:red"),
                               ("best_of_n", "Best-of-N (N = M chains)", "tab:gray")):
        pts = series[dec]
        m = [p["budget"] for p in pts]
        ax.errorbar(m, [p["median"] for p in pts], yerr=error_bars(pts), marker="o", color=colour, capsize=3,
                    label=f"{label}: median, 95% interval")
        ax.plot(m, [p["q90"] for p in pts], marker=".", linestyle=":", color=colour, label=f"{label}: q90")
    ax.set_xscale("log", base=2)
    ms = sorted({p["budget"] for pts in series.values() for p in pts})
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.minorticks_off()
    ax.set_xlabel("M (denoiser calls per sample per step; equal for both methods)")
    ax.set_ylabel(f"{task[1]} reward")
    n = series["svdd_pm"][0]["num_samples"]
    ax.set_title(f"Ablation over M: {task[0]} / {task[1]} ({n} samples per point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)
    return True


def scaling_table(scaling: list[dict], domain: str, reward: str) -> list[str]:
    mine = [r for r in scaling if (r["domain"], r["reward"]) == (domain, reward)]
    if not mine:
        return []
    lines = [f"### Scaling: {domain} / {reward}", "", f"![scaling {domain} / {reward}](scaling_{domain}_{reward}.png)", "",
             "| method | budget | median [95% CI] | q90 [95% CI] | calls per sample (denoiser / value / reward / total) "
             "| wall s per sample |", "|---|---|---|---|---|---|"]
    for dec in methods(mine):
        for r in sorted((r for r in mine if r["decoder"] == dec), key=lambda r: r["budget"]):
            if "skipped" in r:
                lines.append(f"| {dec} | {r['budget']} | skipped: {r['skipped']} | | | |")
            else:
                lines.append(f"| {dec} | {r['budget']} | {fmt_ci(r['median'], r['median_ci'])} | "
                             f"{fmt_ci(r['q90'], r['q90_ci'])} | {calls_text(r['calls_per_sample'])} | "
                             f"{r['wall_seconds_per_sample']:.3g} |")
    return lines + [""]


def write_report(out: Path, *, mode: Mode, meta: dict, rows: list[dict], scaling: list[dict]) -> list[dict]:
    """benchmark.json, benchmark.md and the plots from the runs' rows (with per-sample rewards)."""
    checks = ordering_checks(rows, mode.tasks)
    if rows:
        plot_boxes(out / "boxplots.png", rows, mode.tasks)
    scaled = [(d, r) for d, r in mode.tasks if scaling_series_any(scaling, d, r)]
    for domain, reward in scaled:
        plot_scaling(out / f"scaling_{domain}_{reward}.png", scaling, domain, reward)
    ablation = bool(scaling) and plot_ablation(out / "ablation_m.png", scaling, mode.ablation_task)
    strip = lambda r: {k: v for k, v in r.items() if k != "rewards"}  # noqa: E731 - per-sample rewards live in runs/
    atomic_write_text(out / "benchmark.json", json.dumps(
        {**meta, "bootstrap": BOOTSTRAP, "rows": [strip(r) for r in rows], "scaling": [strip(r) for r in scaling],
         "checks": checks}, indent=2) + "\n")
    wall = meta["wall_seconds"]
    # A mode changed by options (--num_samples, --tasks, --budgets, ...) says so in the title.
    named = QUICK if mode.name == "quick" else FULL
    changed = "" if mode == named else ", changed by the options of the command below"
    md = [f"# Benchmark ({mode.name} mode{changed})", "",
          f"`{meta['command']}`: {mode.num_samples} samples per cell (batches of {mode.batch_size}), "
          f"M = {mode.num_candidates}, seed {meta['seed']}, {wall / 60:.1f} min on {meta['machine']}"
          + (f" ({meta['cpu_seconds'] / 60:.1f} CPU min in the benchmark's process)" if "cpu_seconds" in meta else "")
          + ".", "",
          "Intervals are 95% percentile bootstrap intervals over the cell's per-sample rewards "
          f"(scipy.stats.bootstrap, {BOOTSTRAP['n_resamples']} resamples, seed {BOOTSTRAP['seed']}). They treat "
          "samples as independent; SMC and SVDD-R couple the samples of a batch, so theirs understate the "
          "run-to-run spread.", ""]
    if rows:
        md += ["Median reward [95% interval] (higher is better), as in the paper's Table 1:", "",
               *table1(rows, mode.tasks, "median"), "",
               "90th percentile reward [95% interval]:", "",
               *table1(rows, mode.tasks, "q90"), "",
               "Naturalness of the same samples (higher is more natural, except frechet_distance):", "",
               *naturalness_table(rows, mode.tasks), "",
               "Ordering checks (SVDD-PM > Best-of-N > pre-trained in median; SVDD-PM median above the pre-trained "
               "90th percentile), read from the intervals: a method **beats** another only where their 95% intervals "
               "do not overlap, and overlapping intervals are **not distinguishable** at this sample size (neither a "
               "pass nor a failure). Non-overlap is a conservative test.", "",
               *[f"- {c['task']}: {c['verdict'].upper() if c['verdict'] == 'does not hold' else c['verdict']} "
                 f"({c['detail']})" for c in checks], "",
               "## Per task", "",
               "Calls are evaluations per returned sample (denoiser, value, reward and their total); they differ "
               "in cost, so wall time is the fairer axis on a given machine (shared cores make it noisy).", ""]
        for domain, reward in mode.tasks:
            md += task_detail(rows, domain, reward)
    if scaling:
        budgets = ", ".join(str(b) for b in mode.scaling_budgets)
        md += ["## Inference-time scaling", "",
               f"Every method at budgets {budgets} passed as `decoder.num_candidates` (Best-of-N: N chains; "
               "SVDD-PM / SVDD-MC / SVDD-R: M candidates per step; SMC: particles per returned sample); pre-trained "
               f"sampling and DPS draw once per step and have one point, at budget 1. {mode.scaling_samples} samples "
               f"per point (batches of {mode.scaling_batch_size}). Pick the highest curve at the wall time or calls "
               "you can spend.", ""]
        for domain, reward in scaled:
            md += scaling_table(scaling, domain, reward)
    md += (["![rewards per method](boxplots.png)", ""] if rows else []) + \
        (["![ablation over M (SVDD-PM against Best-of-N, from the scaling rows)](ablation_m.png)", ""] if ablation else [])
    atomic_write_text(out / "benchmark.md", "\n".join(md))
    return checks


def scaling_series_any(scaling: list[dict], domain: str, reward: str) -> bool:
    return any((r["domain"], r["reward"]) == (domain, reward) and "skipped" not in r for r in scaling)


def report_from(out: Path) -> None:
    """Rewrite the report of an earlier run in ``out`` (its benchmark.json and runs/) without decoding."""
    data = json.loads((out / "benchmark.json").read_text())
    mode = mode_from(data["mode"])
    rows, scaling = data["rows"], data.get("scaling", [])
    for r in rows + scaling:
        if "skipped" not in r:
            r["rewards"] = read_rewards(Path(r["output_dir"]))
            r.setdefault("budget", r.get("num_candidates", mode.num_candidates))
            complete_row(r)
    meta = {k: data[k] for k in ("mode", "seed", "wall_seconds", "machine", "command") if k in data}
    meta.update({k: data[k] for k in ("table_seconds", "scaling_seconds", "cpu_seconds", "wandb") if k in data})
    meta["mode"] = asdict(mode)
    write_report(out, mode=mode, meta=meta, rows=rows, scaling=scaling)


def scaling_plan(mode: Mode, decoders: list[str], search_path: Sequence[str] = ()) -> list[tuple[str, str, str, int]]:
    plan = []
    for domain, reward in (t for t in mode.tasks if t in mode.scaling_tasks):
        for dec in decoders:
            for budget in ((1,) if single_point(dec, search_path) else sorted(mode.scaling_budgets)):
                plan.append((domain, reward, dec, budget))
    return plan


def shown(row: dict) -> str:
    if "skipped" in row:
        return f"skipped ({row['skipped']})"
    calls = row["calls_per_sample"]["total"]
    return (f"median {fmt_ci(row['median'], row['median_ci'])}, q90 {fmt(row['q90'])}, {calls:.0f} calls and "
            f"{row['wall_seconds_per_sample']:.3g} s per sample")


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
    skip = {(r["domain"], r["reward"], r["decoder"]): r["skipped"] for r in rows if "skipped" in r}
    table = {(r["domain"], r["reward"], r["decoder"]): r for r in rows if "skipped" not in r}
    last_calls: dict[tuple, tuple[int, float]] = {}
    scaling = []
    for i, (domain, reward, decoder, budget) in enumerate(plan, 1):
        key = (domain, reward, decoder)
        tic = time.perf_counter()
        same = table.get(key)
        if key in skip:
            row = {"domain": domain, "reward": reward, "decoder": decoder, "budget": budget,
                   "num_samples": mode.scaling_samples, "batch_size": mode.scaling_batch_size, "seed": seed,
                   "skipped": skip[key]}
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
            if "skipped" in row:
                skip[key] = row["skipped"]
            else:
                calls = row["calls_per_sample"]["total"]
                if key in last_calls and calls <= last_calls[key][1]:
                    reason = (f"{decoder} ignores decoder.num_candidates: budget {budget} cost the same "
                              f"{calls:.0f} calls per sample as budget {last_calls[key][0]}")
                    skip[key] = reason
                    row = {k: row[k] for k in ("domain", "reward", "decoder", "budget", "num_samples",
                                               "batch_size", "seed")} | {"skipped": reason}
                else:
                    last_calls[key] = (budget, calls)
        scaling.append(row)
        if on_row is not None:
            on_row(row)
        print(f"[scaling {i}/{len(plan)}] {domain}/{reward} {decoder} budget {budget}: {shown(row)} "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
    return scaling


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the four default tasks with small runs")
    parser.add_argument("--output_dir", required=True, help="where benchmark.md/.json, plots and runs go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decoders", nargs="+", default=DECODERS, metavar="NAME",
                        help="a subset of methods (default: the library's eight), or a decoder of your own: a "
                             "decoder/NAME.yaml in a --search_path directory")
    parser.add_argument("--search_path", nargs="+", default=[], metavar="DIR",
                        help="config directories added to decode.py's (as hydra.searchpath), e.g. for your own "
                             "decoder/NAME.yaml")
    parser.add_argument("--tasks", nargs="+", metavar="DOMAIN/REWARD", help="a subset of tasks, e.g. dna/hepg2_motif")
    parser.add_argument("--num_samples", type=int,
                        help="samples per table cell (default: the mode's; also caps the samples per scaling point)")
    parser.add_argument("--num_candidates", type=int, help="M of the table, for every method (default: the mode's)")
    parser.add_argument("--budgets", type=int, nargs="+", metavar="B",
                        help="decoder.num_candidates of the scaling comparison (default: 1 2 4 8 16)")
    parser.add_argument("--scaling_samples", type=int, help="samples per scaling point (default: the mode's)")
    parser.add_argument("--no_scaling", action="store_true", help="skip the inference-time scaling comparison")
    parser.add_argument("--no_ablation", action="store_true", help=argparse.SUPPRESS)  # its former name
    parser.add_argument("--logger", choices=["wandb", "none"], default="wandb",
                        help="one W&B run per row in one group (offline unless W&B is configured; default), or none")
    parser.add_argument("--report_only", action="store_true",
                        help="rewrite benchmark.md/.json and the plots of an earlier run in --output_dir")
    args = parser.parse_args(argv)
    if args.report_only:
        report_from(Path(args.output_dir))
        return 0
    mode = QUICK if args.quick else FULL
    unknown = [d for d in args.decoders if d not in known_decoders(args.search_path)]
    if unknown:
        parser.error(f"unknown decoder(s) {unknown}; choose from {known_decoders(args.search_path)}, or add "
                     f"DIR/decoder/NAME.yaml and pass --search_path DIR")
    changes = {}
    if args.tasks:
        known = {f"{d}/{r}" for d, r in ALL_TASKS}
        unknown = [t for t in args.tasks if t not in known]
        if unknown:
            parser.error(f"unknown task(s) {unknown}; choose from {sorted(known)}")
        changes["tasks"] = tuple(tuple(t.split("/")) for t in args.tasks)
        changes["scaling_tasks"] = changes["tasks"]  # the tasks asked for are the ones scaled
    if args.num_samples:
        changes.update(num_samples=args.num_samples, batch_size=min(mode.batch_size, args.num_samples),
                       scaling_samples=min(mode.scaling_samples, args.num_samples))
    if args.scaling_samples:
        changes["scaling_samples"] = args.scaling_samples
    if "scaling_samples" in changes:
        changes["scaling_batch_size"] = min(mode.scaling_batch_size, changes["scaling_samples"])
    if args.num_candidates:
        changes["num_candidates"] = args.num_candidates
    if args.budgets:
        if min(args.budgets) < 1:
            parser.error("--budgets must be positive integers")
        changes["scaling_budgets"] = tuple(sorted(set(args.budgets)))
    if changes:
        mode = replace(mode, **changes)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    from svdd_lightning.cli import quiet_lightning

    quiet_lightning()
    torch.set_float32_matmul_precision("high")
    from svdd_lightning.stopping import StopRequested, resume_hint, stop_on_signals

    try:
        with stop_on_signals():  # SIGTERM / Ctrl-C: stop between or inside cells; a rerun picks up the rest
            return run_benchmark(args, argv, mode, out)
    except StopRequested as stop:
        print(f"{stop}: finished cells are kept in {out / 'runs'}; {resume_hint()}", file=sys.stderr, flush=True)
        return stop.exit_code


def run_benchmark(args: argparse.Namespace, argv: list[str] | None, mode, out: Path) -> int:
    """The table, the scaling comparison and the report; cells finished by an earlier run are reused."""
    import torch

    cells = CellLogger(args.logger, out, mode=mode.name)
    start, cpu_start = time.perf_counter(), time.process_time()
    rows: list[dict] = []
    # the table's order, whatever the order asked; then decoders of the search path, as asked
    decoders = [dec for dec in DECODERS if dec in args.decoders] + \
        [dec for dec in dict.fromkeys(args.decoders) if dec not in DECODERS]
    plan = [(d, r, dec) for d, r in mode.tasks for dec in decoders]
    for i, (domain, reward, decoder) in enumerate(plan, 1):
        tic = time.perf_counter()
        row = run_one(domain=domain, reward=reward, decoder=decoder, num_samples=mode.num_samples,
                      batch_size=mode.batch_size, num_candidates=mode.num_candidates, seed=args.seed,
                      run_dir=out / "runs" / f"{domain}-{reward}-{decoder}", search_path=args.search_path)
        rows.append(row)
        cells.log(row, "table")
        print(f"[{i}/{len(plan)}] {domain}/{reward} {decoder}: {shown(row)} ({time.perf_counter() - tic:.0f} s)",
              flush=True)
    table_seconds = time.perf_counter() - start

    scaling = [] if (args.no_scaling or args.no_ablation) else \
        run_scaling(mode, decoders, rows, seed=args.seed, out=out, on_row=lambda row: cells.log(row, "scaling"),
                    search_path=args.search_path)

    wall = time.perf_counter() - start
    machine = f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    meta = {"mode": asdict(mode), "seed": args.seed, "wall_seconds": round(wall, 1),
            "table_seconds": round(table_seconds, 1), "scaling_seconds": round(wall - table_seconds, 1),
            # CPU seconds of this process: with other jobs on the cores, wall time alone overstates the cost.
            "cpu_seconds": round(time.process_time() - cpu_start, 1), "machine": machine, "wandb": cells.meta(),
            "command": "python benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    checks = write_report(out, mode=mode, meta=meta, rows=rows, scaling=scaling)
    print(f"\nbenchmark ({mode.name}): {wall / 60:.1f} min (table {table_seconds / 60:.1f}, scaling "
          f"{(wall - table_seconds) / 60:.1f}; {meta['cpu_seconds'] / 60:.1f} CPU min) -> {out / 'benchmark.md'}, "
          f"{out / 'benchmark.json'}")
    for c in checks:
        print(f"  {c['task']}: {c['verdict']} - {c['detail']}")
    if cells.hint():
        print(cells.hint())
    broken = [r for r in rows + scaling if r.get("failed")]
    for r in broken:
        print(f"  FAILED: {r['domain']}/{r['reward']} {r['decoder']} budget {r['budget']}: {r['skipped']}")
    return 1 if broken else 0


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    sys.exit(main())
