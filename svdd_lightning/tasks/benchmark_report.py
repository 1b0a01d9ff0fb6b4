"""The benchmark's report from its rows: benchmark.json, benchmark.md (Table 1's shape with 95% intervals, the
ordering checks, per-task detail, the scaling tables) and the plots; also a finished run's report redrawn from
its benchmark.json and runs/ (--report_only)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from svdd_lightning.atomic import atomic_write_text
from svdd_lightning.stats import BEATEN, BEATS, BOOTSTRAP, TIED, compare, reward_intervals
from svdd_lightning.tasks.benchmark_plan import FULL, QUICK, Mode, methods, mode_from
from svdd_lightning.tasks.benchmark_plots import plot_ablation, plot_boxes, plot_scaling
from svdd_lightning.tasks.benchmark_rows import is_ok, read_row

# The naturalness metrics shown per domain in the summary table (all of them are in the JSON and
# the per-task tables).
HEADLINE_NATURALNESS = {"dna": ("kmer3_correlation", "unique_fraction"), "rna": ("kmer3_correlation", "unique_fraction"),
                        "molecule": ("uniqueness", "internal_diversity"), "image": ("digit_rate", "frechet_distance"),
                        "image_flow": ("digit_rate", "frechet_distance")}


def read_rewards(run_dir: Path) -> list[float]:
    """Per-sample rewards of one decode run, from its samples.csv."""
    with open(run_dir / "samples.csv", newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


def with_intervals(row: dict) -> dict:
    """A decoded row with the bootstrap intervals of its median and q90 (from its per-sample ``rewards``)."""
    if is_ok(row):
        row.update(reward_intervals(row["rewards"]))
    return row


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
            cells.append("n/a" if r is None or not is_ok(r) else fmt_ci(r[stat], r[f"{stat}_ci"]))
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
            if r is None or not is_ok(r):
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
        if not is_ok(r):
            lines.append(f"| {r['decoder']} | {r['status']}: {r['reason']} | |" + " |" * len(nat_keys) + " | | |")
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
        get = {r["decoder"]: r for r in rows if (r["domain"], r["reward"]) == (domain, reward) and is_ok(r)}
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


def scaling_table(scaling: list[dict], domain: str, reward: str) -> list[str]:
    mine = [r for r in scaling if (r["domain"], r["reward"]) == (domain, reward)]
    if not mine:
        return []
    lines = [f"### Scaling: {domain} / {reward}", "", f"![scaling {domain} / {reward}](scaling_{domain}_{reward}.png)", "",
             "| method | budget | median [95% CI] | q90 [95% CI] | calls per sample (denoiser / value / reward / total) "
             "| wall s per sample |", "|---|---|---|---|---|---|"]
    for dec in methods(mine):
        for r in sorted((r for r in mine if r["decoder"] == dec), key=lambda r: r["budget"]):
            if not is_ok(r):
                lines.append(f"| {dec} | {r['budget']} | {r['status']}: {r['reason']} | | | |")
            else:
                lines.append(f"| {dec} | {r['budget']} | {fmt_ci(r['median'], r['median_ci'])} | "
                             f"{fmt_ci(r['q90'], r['q90_ci'])} | {calls_text(r['calls_per_sample'])} | "
                             f"{r['wall_seconds_per_sample']:.3g} |")
    return lines + [""]


def call_matched_winners(scaling: list[dict], domain: str, reward: str) -> list[dict]:
    """Who wins at matched calls: for each cap, the calls per sample (asked, total) of Best-of-N's scaling points
    (N (T + 1): the ladder of plain compute), every method's best point within the cap (1% slack), the leader by
    median, and the methods whose best point's interval reaches the leader's (not distinguishable from it)."""
    mine = [r for r in scaling if (r["domain"], r["reward"]) == (domain, reward) and is_ok(r)]
    caps = sorted({r["calls_per_sample"]["total"] for r in mine if r["decoder"] == "best_of_n"})
    out = []
    for cap in caps:
        best: dict[str, dict] = {}
        for r in mine:
            if r["calls_per_sample"]["total"] <= 1.01 * cap and (
                    r["decoder"] not in best or r["median"] > best[r["decoder"]]["median"]):
                best[r["decoder"]] = r
        leader = max(best.values(), key=lambda r: r["median"])
        tied = [d for d, r in best.items() if r is not leader and compare(r["median_ci"], leader["median_ci"]) == TIED]
        out.append({"calls": cap, "leader": leader, "tied": tied})
    return out


def winners_table(scaling: list[dict], domain: str, reward: str) -> list[str]:
    winners = call_matched_winners(scaling, domain, reward)
    if not winners:
        return []
    lines = [f"Winners at matched calls ({domain} / {reward}): each method's best scaling point within the calls of "
             "Best-of-N at each N.", "", "| calls per sample, at most | leader (budget): median [95% CI] | "
             "not distinguishable from it |", "|---|---|---|"]
    for w in winners:
        r = w["leader"]
        lines.append(f"| {w['calls']:.0f} | {r['decoder']} ({r['budget']}): {fmt_ci(r['median'], r['median_ci'])} | "
                     f"{', '.join(w['tied']) or 'none'} |")
    return lines + [""]


def seeds_text(meta: dict) -> str:
    """``seed 0``, or ``seeds 0, 1, 2 (each cell pools one decode per seed)``."""
    seeds = meta.get("seeds") or [meta["seed"]]
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(map(str, seeds))} (per seed and cell; each cell pools one decode per seed)"


def seed_spread_table(rows: list[dict], tasks) -> list[str]:
    """The median of each seed's decode, per cell: the run-to-run spread beside the pooled bootstrap interval
    (which treats SMC's and SVDD-R's coupled samples as independent). Empty for a single-seed run."""
    if not any(len(r.get("seed_medians", ())) > 1 for r in rows):
        return []
    columns = methods(rows)
    lines = ["Median of each seed's decode (seed-to-seed spread; compare with the pooled interval above):", "",
             "| Task | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for domain, reward in tasks:
        cells = []
        for dec in columns:
            r = find(rows, domain, reward, dec)
            cells.append("n/a" if r is None or not is_ok(r) or "seed_medians" not in r
                         else " / ".join(fmt(m) for m in r["seed_medians"]))
        lines.append(f"| {domain} / {reward} | " + " | ".join(cells) + " |")
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
          f"M = {mode.num_candidates}, {seeds_text(meta)}, {wall / 60:.1f} min on {meta['machine']}"
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
               *seed_spread_table(rows, mode.tasks),
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
            md += scaling_table(scaling, domain, reward) + winners_table(scaling, domain, reward)
    md += (["![rewards per method](boxplots.png)", ""] if rows else []) + \
        (["![ablation over M (SVDD-PM against Best-of-N, from the scaling rows)](ablation_m.png)", ""] if ablation else [])
    atomic_write_text(out / "benchmark.md", "\n".join(md))
    return checks


def scaling_series_any(scaling: list[dict], domain: str, reward: str) -> bool:
    return any((r["domain"], r["reward"]) == (domain, reward) and is_ok(r) for r in scaling)


def report_from(out: Path) -> None:
    """Rewrite the report of an earlier run in ``out`` (its benchmark.json and runs/) without decoding."""
    data = json.loads((out / "benchmark.json").read_text())
    mode = mode_from(data["mode"])

    def read(stored: dict) -> dict:
        row = read_row(stored, default_budget=mode.num_candidates)
        if is_ok(row):
            dirs = row["output_dir"] if isinstance(row["output_dir"], list) else [row["output_dir"]]
            row["rewards"] = [x for d in dirs for x in read_rewards(Path(d))]  # pooled seeds: every run's
        return with_intervals(row)

    rows, scaling = ([read(r) for r in data.get(part, [])] for part in ("rows", "scaling"))
    meta = {k: data[k] for k in ("mode", "seed", "seeds", "wall_seconds", "machine", "command") if k in data}
    meta.update({k: data[k] for k in ("table_seconds", "scaling_seconds", "cpu_seconds", "wandb") if k in data})
    meta["mode"] = asdict(mode)
    write_report(out, mode=mode, meta=meta, rows=rows, scaling=scaling)
