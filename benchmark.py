"""Regenerate the paper's comparison (Table 1) on all four domains with one command.

    python benchmark.py --quick --output_dir DIR     # the four default tasks, small runs (minutes on a laptop)
    python benchmark.py --output_dir DIR             # every task, the acceptance-size runs

Runs pretrained, best_of_n, dps, smc, svdd_mc, svdd_pm and svdd_r through decode.py's own code
path (in-process, one composed Hydra config per run) and writes to DIR:

- ``benchmark.json``: one row per (domain, reward, decoder) with median, q90, mean, calls per
  sample (``nfe``), ``wall_seconds`` and the domain's naturalness metrics; runs that cannot be
  made (no SVDD-MC value shipped for that reward) are rows with ``skipped``, never left out;
  plus the ablation over M;
- ``benchmark.md``: a table shaped like the paper's Table 1 (median / q90 per task and method)
  and per-task detail tables (naturalness, calls, wall time);
- ``boxplots.png`` (rewards per method, one panel per task) and ``ablation_m.png`` (SVDD-PM and
  Best-of-N median reward against M at equal denoiser calls);
- ``runs/<domain>-<reward>-<decoder>/``: each run's decode.py outputs.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from svdd_lightning.atomic import atomic_write_text

REPO = Path(__file__).resolve().parent
DECODERS = ["pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r"]
DEFAULT_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("image", "compressibility")]
ALL_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("molecule", "sa"),
             ("image", "compressibility"), ("image", "digit")]
# The naturalness metrics shown per domain in the summary table (all of them are in the JSON and
# the per-task tables).
HEADLINE_NATURALNESS = {"dna": ("kmer3_correlation", "unique_fraction"), "rna": ("kmer3_correlation", "unique_fraction"),
                        "molecule": ("uniqueness", "internal_diversity"), "image": ("digit_rate", "frechet_distance")}


@dataclass(frozen=True)
class Mode:
    name: str
    tasks: tuple[tuple[str, str], ...]
    num_samples: int
    batch_size: int
    num_candidates: int
    ablation_task: tuple[str, str]
    ablation_m: tuple[int, ...]
    ablation_samples: int


QUICK = Mode(name="quick", tasks=tuple(DEFAULT_TASKS), num_samples=24, batch_size=24, num_candidates=5,
             ablation_task=("dna", "hepg2_motif"), ablation_m=(1, 2, 5, 10, 20), ablation_samples=8)
FULL = Mode(name="full", tasks=tuple(ALL_TASKS), num_samples=64, batch_size=64, num_candidates=10,
            ablation_task=("dna", "hepg2_motif"), ablation_m=(1, 2, 5, 10, 20), ablation_samples=32)


def compose_decode(overrides: list[str]):
    """decode.py's config as Hydra would compose it, with its runtime choices set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3", job_name="benchmark"):
        cfg = compose(config_name="decode", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def read_rewards(run_dir: Path) -> list[float]:
    """Per-sample rewards of one decode run, from its samples.csv."""
    with open(run_dir / "samples.csv", newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


def run_one(*, domain: str, reward: str, decoder: str, num_samples: int, batch_size: int, num_candidates: int,
            seed: int, run_dir: Path) -> dict:
    """One decode.py run; returns its summary plus the per-sample rewards, or a 'skipped' row."""
    from hydra.errors import InstantiationException

    from decode import run_decode
    from svdd_lightning.errors import SVDDError

    overrides = [f"domain={domain}", f"reward={reward}", f"decoder={decoder}", f"num_samples={num_samples}",
                 f"batch_size={batch_size}", f"seed={seed}", f"decoder.num_candidates={num_candidates}",
                 f"output_dir={run_dir}", "logger=none", "trainer.enable_progress_bar=false", "overwrite=true"]
    row = {"domain": domain, "reward": reward, "decoder": decoder, "num_samples": num_samples}
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        # decode.py's report goes to the run's own log; the benchmark prints one line per run.
        with open(run_dir / "decode.log", "w") as log, contextlib.redirect_stdout(log):
            summary = run_decode(compose_decode(overrides))
    except SVDDError as exc:  # e.g. no SVDD-MC value shipped for this reward
        return {**row, "skipped": str(exc)}
    except InstantiationException as exc:  # a constructor refused, e.g. DPS without any gradient
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (SVDDError, ValueError)):
            return {**row, "skipped": str(cause)}
        raise
    rewards = read_rewards(run_dir)
    stats = summary["reward_stats"]
    settings = summary.get("decoder_settings", {})
    return {
        **row,
        "num_candidates": summary["num_candidates"],
        "median": stats["median"], "q90": stats["q90"], "mean": stats["mean"],
        "nfe": summary["nfe_per_sample"],
        "wall_seconds": summary["wall_seconds"],
        "naturalness": summary["naturalness"],
        "settings": settings,
        "rewards": rewards,
        "output_dir": str(run_dir),
    }


def fmt(x: float) -> str:
    if x != 0 and abs(x) < 0.001:
        return f"{x:.1e}"  # log-probabilities near 0 (the digit reward)
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def table1(rows: list[dict], tasks) -> list[str]:
    lines = ["| Task | " + " | ".join(DECODERS) + " |", "|---|" + "---|" * len(DECODERS)]
    for domain, reward in tasks:
        cells = []
        for dec in DECODERS:
            r = next((x for x in rows if (x["domain"], x["reward"], x["decoder"]) == (domain, reward, dec)), None)
            cells.append("n/a" if r is None or "skipped" in r else f"{fmt(r['median'])} / {fmt(r['q90'])}")
        lines.append(f"| {domain} / {reward} | " + " | ".join(cells) + " |")
    return lines


def naturalness_table(rows: list[dict], tasks) -> list[str]:
    lines = ["| Task (metrics) | " + " | ".join(DECODERS) + " |", "|---|" + "---|" * len(DECODERS)]
    for domain, reward in tasks:
        keys = HEADLINE_NATURALNESS.get(domain, ())
        cells = []
        for dec in DECODERS:
            r = next((x for x in rows if (x["domain"], x["reward"], x["decoder"]) == (domain, reward, dec)), None)
            if r is None or "skipped" in r:
                cells.append("n/a")
            else:
                cells.append(" / ".join(fmt(r["naturalness"][k]) if k in r["naturalness"] else "-" for k in keys))
        lines.append(f"| {domain} / {reward} ({' / '.join(keys)}) | " + " | ".join(cells) + " |")
    return lines


def task_detail(rows: list[dict], domain: str, reward: str) -> list[str]:
    mine = [r for r in rows if (r["domain"], r["reward"]) == (domain, reward)]
    nat_keys = sorted({k for r in mine if "naturalness" in r for k in r["naturalness"] if not k.endswith("_median")})
    lines = [f"### {domain} / {reward}", "",
             "| method | median / q90 | " + " | ".join(nat_keys) + " | calls per sample (denoiser / value / reward) | wall s |",
             "|---|---|" + "---|" * len(nat_keys) + "---|---|"]
    for r in mine:
        if "skipped" in r:
            lines.append(f"| {r['decoder']} | skipped: {r['skipped']} |" + " |" * len(nat_keys) + " | |")
            continue
        nat = " | ".join(fmt(r["naturalness"][k]) if k in r["naturalness"] else "" for k in nat_keys)
        n = r["nfe"]
        note = f" ({r['settings']['guided_by']})" if "guided_by" in r.get("settings", {}) else ""
        lines.append(f"| {r['decoder']}{note} | {fmt(r['median'])} / {fmt(r['q90'])} | {nat} | "
                     f"{n['denoiser']:.0f} / {n['value']:.0f} / {n['reward']:.0f} | {r['wall_seconds']:.1f} |")
    return lines + [""]


def ordering_checks(rows: list[dict], tasks) -> list[tuple[str, bool, str]]:
    """SVDD-PM > Best-of-N > pre-trained in median, and SVDD-PM median >= pre-trained q90, per task."""
    checks = []
    for domain, reward in tasks:
        get = {r["decoder"]: r for r in rows if (r["domain"], r["reward"]) == (domain, reward) and "skipped" not in r}
        if not all(k in get for k in ("pretrained", "best_of_n", "svdd_pm")):
            continue
        pm, bon, pre = get["svdd_pm"], get["best_of_n"], get["pretrained"]
        order = pm["median"] > bon["median"] > pre["median"]
        above = pm["median"] >= pre["q90"]
        checks.append((f"{domain}/{reward}", order and above,
                       f"SVDD-PM {fmt(pm['median'])} > Best-of-N {fmt(bon['median'])} > pre-trained "
                       f"{fmt(pre['median'])}: {order}; SVDD-PM median >= pre-trained q90 {fmt(pre['q90'])}: {above}"))
    return checks


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
        done = [r for dec in DECODERS for r in rows
                if (r["domain"], r["reward"], r["decoder"]) == (domain, reward, dec) and "skipped" not in r]
        ax.boxplot([r["rewards"] for r in done], tick_labels=[r["decoder"] for r in done], showfliers=True)
        ax.set_title(f"{domain} / {reward}")
        ax.set_ylabel(f"{reward} reward (higher is better)")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_ablation(path: Path, ablation: list[dict], task: tuple[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    for dec, label, colour in (("svdd_pm", "SVDD-PM (M candidates)", "tab:red"),
                               ("best_of_n", "Best-of-N (N = M chains)", "tab:gray")):
        pts = sorted((r["num_candidates"], r["median"], r["q90"]) for r in ablation
                     if r["decoder"] == dec and "skipped" not in r)
        if not pts:
            continue
        m, med, q90 = zip(*pts)
        ax.plot(m, med, marker="o", color=colour, label=f"{label}: median")
        ax.plot(m, q90, marker=".", linestyle=":", color=colour, label=f"{label}: q90")
    ax.set_xscale("log", base=2)
    ms = sorted({r["num_candidates"] for r in ablation})
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.minorticks_off()
    ax.set_xlabel("M (denoiser calls per sample per step; equal for both methods)")
    ax.set_ylabel(f"{task[1]} reward")
    ax.set_title(f"Ablation over M: {task[0]} / {task[1]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(out: Path, *, mode: Mode, meta: dict, rows: list[dict], ablation: list[dict]) -> list:
    """benchmark.json, benchmark.md and the plots from the runs' rows (with per-sample rewards)."""
    checks = ordering_checks(rows, mode.tasks)
    plot_boxes(out / "boxplots.png", rows, mode.tasks)
    if ablation:
        plot_ablation(out / "ablation_m.png", ablation, mode.ablation_task)
    strip = lambda r: {k: v for k, v in r.items() if k != "rewards"}  # noqa: E731 - per-sample rewards live in runs/
    atomic_write_text(out / "benchmark.json", json.dumps(
        {**meta, "rows": [strip(r) for r in rows], "ablation": [strip(r) for r in ablation],
         "checks": [{"task": t, "holds": ok, "detail": d} for t, ok, d in checks]}, indent=2) + "\n")
    wall = meta["wall_seconds"]
    md = [f"# Benchmark ({mode.name} mode)", "",
          f"`{meta['command']}`: {mode.num_samples} samples per run, M = {mode.num_candidates}, seed {meta['seed']}, "
          f"{wall / 60:.1f} min on {meta['machine']}.", "",
          "Median / 90th percentile reward (higher is better), as in the paper's Table 1:", "",
          *table1(rows, mode.tasks), "",
          "Naturalness of the same samples (higher is more natural, except frechet_distance):", "",
          *naturalness_table(rows, mode.tasks), "",
          "Ordering checks (SVDD-PM > Best-of-N > pre-trained in median; SVDD-PM median at or above the pre-trained "
          "90th percentile):", "",
          *[f"- {t}: {'holds' if ok else 'DOES NOT HOLD'} ({d})" for t, ok, d in checks], "",
          "## Per task", ""]
    for domain, reward in mode.tasks:
        md += task_detail(rows, domain, reward)
    if ablation:
        md += [f"## Ablation over M ({mode.ablation_task[0]} / {mode.ablation_task[1]}, "
               f"{mode.ablation_samples} samples)", "",
               "| M | SVDD-PM median / q90 | Best-of-N median / q90 | denoiser calls per sample (SVDD-PM / BoN) |",
               "|---|---|---|---|"]
        for m in mode.ablation_m:
            pm = next(r for r in ablation if r["decoder"] == "svdd_pm" and r["num_candidates"] == m)
            bon = next(r for r in ablation if r["decoder"] == "best_of_n" and r["num_candidates"] == m)
            md.append(f"| {m} | {fmt(pm['median'])} / {fmt(pm['q90'])} | {fmt(bon['median'])} / {fmt(bon['q90'])} | "
                      f"{pm['nfe']['denoiser']:.0f} / {bon['nfe']['denoiser']:.0f} |")
        md.append("")
    md += ["![rewards per method](boxplots.png)", ""] + (["![ablation over M](ablation_m.png)", ""] if ablation else [])
    atomic_write_text(out / "benchmark.md", "\n".join(md))
    return checks


def report_from(out: Path) -> None:
    """Rewrite the report of an earlier run in ``out`` (its benchmark.json and runs/) without decoding."""
    data = json.loads((out / "benchmark.json").read_text())
    mode = Mode(**{**data["mode"], "tasks": tuple(tuple(t) for t in data["mode"]["tasks"]),
                   "ablation_task": tuple(data["mode"]["ablation_task"]), "ablation_m": tuple(data["mode"]["ablation_m"])})
    rows = data["rows"]
    for r in rows:
        if "skipped" not in r:
            r["rewards"] = read_rewards(Path(r["output_dir"]))
    meta = {k: data[k] for k in ("mode", "seed", "wall_seconds", "machine", "command")}
    write_report(out, mode=mode, meta=meta, rows=rows, ablation=data["ablation"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the four default tasks with small runs")
    parser.add_argument("--output_dir", required=True, help="where benchmark.md/.json, plots and runs go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decoders", nargs="+", default=DECODERS, choices=DECODERS, help="a subset of methods")
    parser.add_argument("--no_ablation", action="store_true", help="skip the ablation over M")
    parser.add_argument("--tasks", nargs="+", metavar="DOMAIN/REWARD", help="a subset of tasks, e.g. dna/hepg2_motif")
    parser.add_argument("--num_samples", type=int, help="samples per run (default: the mode's)")
    parser.add_argument("--num_candidates", type=int, help="M for every method (default: the mode's)")
    parser.add_argument("--report_only", action="store_true",
                        help="rewrite benchmark.md/.json and the plots of an earlier run in --output_dir")
    args = parser.parse_args(argv)
    if args.report_only:
        report_from(Path(args.output_dir))
        return 0
    mode = QUICK if args.quick else FULL
    changes = {}
    if args.tasks:
        known = {f"{d}/{r}" for d, r in ALL_TASKS}
        unknown = [t for t in args.tasks if t not in known]
        if unknown:
            parser.error(f"unknown task(s) {unknown}; choose from {sorted(known)}")
        changes["tasks"] = tuple(tuple(t.split("/")) for t in args.tasks)
    if args.num_samples:
        changes.update(num_samples=args.num_samples, batch_size=args.num_samples,
                       ablation_samples=min(mode.ablation_samples, args.num_samples))
    if args.num_candidates:
        changes["num_candidates"] = args.num_candidates
    if changes:
        mode = replace(mode, **changes)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    from svdd_lightning.cli import quiet_lightning

    quiet_lightning()
    torch.set_float32_matmul_precision("high")
    start = time.perf_counter()
    rows: list[dict] = []
    decoders = [dec for dec in DECODERS if dec in args.decoders]  # the table's order, whatever the order asked
    plan = [(d, r, dec) for d, r in mode.tasks for dec in decoders]
    for i, (domain, reward, decoder) in enumerate(plan, 1):
        tic = time.perf_counter()
        row = run_one(domain=domain, reward=reward, decoder=decoder, num_samples=mode.num_samples,
                      batch_size=mode.batch_size, num_candidates=mode.num_candidates, seed=args.seed,
                      run_dir=out / "runs" / f"{domain}-{reward}-{decoder}")
        rows.append(row)
        shown = f"skipped ({row['skipped']})" if "skipped" in row else \
            f"median {fmt(row['median'])}, q90 {fmt(row['q90'])}"
        print(f"[{i}/{len(plan)}] {domain}/{reward} {decoder}: {shown} ({time.perf_counter() - tic:.0f} s)",
              flush=True)

    ablation: list[dict] = []
    if not args.no_ablation:
        domain, reward = mode.ablation_task
        for m in mode.ablation_m:
            for decoder in ("svdd_pm", "best_of_n"):
                row = run_one(domain=domain, reward=reward, decoder=decoder, num_samples=mode.ablation_samples,
                              batch_size=mode.ablation_samples, num_candidates=m, seed=args.seed,
                              run_dir=out / "runs" / f"ablation-{domain}-{reward}-{decoder}-M{m}")
                ablation.append(row)
                print(f"[ablation M={m}] {decoder}: median {fmt(row['median'])} ({row['nfe']['denoiser']:.0f} "
                      f"denoiser calls per sample)", flush=True)

    wall = time.perf_counter() - start
    machine = f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    meta = {"mode": asdict(mode), "seed": args.seed, "wall_seconds": round(wall, 1), "machine": machine,
            "command": "python benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    checks = write_report(out, mode=mode, meta=meta, rows=rows, ablation=ablation)
    print(f"\nbenchmark ({mode.name}): {wall / 60:.1f} min -> {out / 'benchmark.md'}, {out / 'benchmark.json'}")
    for t, ok, d in checks:
        print(f"  {t}: {'holds' if ok else 'DOES NOT HOLD'} - {d}")
    return 0


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    sys.exit(main())
