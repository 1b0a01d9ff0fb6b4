"""Several rewards at once, every decoder side by side: one Pareto plot and a table with intervals.

    python benchmarks/pareto.py [--domain molecule] [--rewards qed sa] [--decoders pretrained svdd_pm ...]
                                [--num_samples 64] [--seed 0] [--output_dir outputs/pareto-molecule-qed-sa]

Runs ``decode.py domain=D reward=[A,B] decoder=X num_samples=N seed=S logger=none`` once per decoder into
``output_dir/X`` (a decoder whose folder already holds a summary.json is not run again, so an interrupted run
resumes), then reads each run's per-component rewards (samples.csv ``reward_<name>``) and writes

- ``pareto.png``: the first two components of every decoder's samples, each decoder's non-dominated samples
  joined (its Pareto front) and its median marked;
- ``pareto.md`` / ``pareto.json``: per decoder, each component's median with its 95% bootstrap interval
  (svdd_lightning/stats.py), the share of samples that beat pre-trained sampling's median on both components,
  calls per sample (asked and made) and wall seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from svdd_lightning.tasks.benchmark_plan import COLOURS, DECODERS, per_sample_costs  # noqa: E402
from callbacks.decode_outputs import pareto_front  # noqa: E402
from svdd_lightning.atomic import atomic_path, atomic_write_text  # noqa: E402
from svdd_lightning.stats import bootstrap_ci  # noqa: E402


def decode_command(*, domain: str, rewards: list[str], decoder: str, num_samples: int, seed: int,
                   out: Path) -> list[str]:
    return [sys.executable, str(REPO / "decode.py"), f"domain={domain}", f"reward=[{','.join(rewards)}]",
            f"decoder={decoder}", f"num_samples={num_samples}", f"seed={seed}", "logger=none", f"output_dir={out}"]


def finished_run(out: Path, *, num_samples: int, seed: int, reward: str) -> bool:
    """Whether ``out`` holds a finished decode of these settings; a finished one of other settings is an error
    (reusing it would report it under settings it was not run with)."""
    path = out / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text())
    found = {"num_samples": summary.get("num_samples"), "seed": summary.get("seed"), "reward": summary.get("reward")}
    wanted = {"num_samples": num_samples, "seed": seed, "reward": reward}
    if found != wanted:
        raise SystemExit(f"{out} holds a finished run of other settings ({found}, wanted {wanted}); remove it or "
                         f"pick another --output_dir.")
    return True


def run_decoder(command: list[str], out: Path, **settings) -> float | None:
    """Run one decode unless ``out`` already holds a finished one of these settings; the seconds it took (None
    when reused)."""
    if finished_run(out, **settings):
        return None
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"decode failed ({' '.join(command[1:])}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def component_names(specs: list[str]) -> list[str]:
    """samples.csv's names of the components: a function given by import path is named after the function."""
    return [spec.rsplit(".", 1)[1] if "." in spec else spec for spec in specs]


def read_components(out: Path, names: list[str]) -> dict[str, np.ndarray]:
    with open(out / "samples.csv") as handle:
        rows = list(csv.DictReader(handle))
    missing = [n for n in names if f"reward_{n}" not in rows[0]]
    if missing:
        raise SystemExit(f"{out / 'samples.csv'} has no column reward_{missing[0]}: was it written by a run with "
                         f"these rewards? Remove the folder to run it again.")
    return {n: np.array([float(r[f"reward_{n}"]) for r in rows]) for n in names}


def dominating_share(xs: np.ndarray, ys: np.ndarray, point: tuple[float, float]) -> float:
    """The share of samples strictly above ``point`` on both components."""
    return float(np.mean((xs > point[0]) & (ys > point[1])))


def summarise(runs: dict[str, dict[str, np.ndarray]], summaries: dict[str, dict], names: list[str]) -> list[dict]:
    a, b = names[:2]
    base = runs.get("pretrained")
    base_point = None if base is None else (float(np.median(base[a])), float(np.median(base[b])))
    rows = []
    for decoder, values in runs.items():
        summary = summaries[decoder]
        costs = per_sample_costs(summary)
        naturalness = summary.get("naturalness") or {}
        row = {"decoder": decoder, "num_samples": int(len(values[a])),
               "calls_per_sample": costs["calls_per_sample"]["total"],
               "made_calls_per_sample": costs["made_calls_per_sample"]["total"],
               "unique": naturalness.get("uniqueness", naturalness.get("unique_fraction")),
               "wall_seconds": summary.get("wall_seconds")}
        for name in names:
            row[name] = {"median": float(np.median(values[name])), "median_ci95": bootstrap_ci(values[name])}
        row["beats_pretrained_median_on_both"] = (None if base_point is None
                                                  else dominating_share(values[a], values[b], base_point))
        rows.append(row)
    return rows


def plot(path: Path, runs: dict[str, dict[str, np.ndarray]], names: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = names[:2]
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for decoder, values in runs.items():
        xs, ys = values[a], values[b]
        colour = COLOURS.get(decoder)
        ax.scatter(xs, ys, s=10, alpha=0.35, color=colour)
        front = pareto_front(xs, ys)
        ax.plot(xs[front], ys[front], "-", lw=1.2, color=colour, label=f"{decoder} (front)")
        ax.plot([np.median(xs)], [np.median(ys)], "*", ms=13, color=colour, markeredgecolor="black")
    ax.set_xlabel(f"{a} (higher is better)")
    ax.set_ylabel(f"{b} (higher is better)")
    ax.set_title(title + "\n(points: samples; lines: each decoder's Pareto front; stars: medians)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def table(rows: list[dict], names: list[str]) -> list[str]:
    head = ["decoder", *[f"{n} median [95%]" for n in names], "beats pre-trained median on both",
            "unique", "calls / sample (asked, made)", "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["decoder"]]
        for n in names:
            lo, hi = row[n]["median_ci95"]
            cells.append(f"{row[n]['median']:.3f} [{lo:.3f}, {hi:.3f}]")
        share = row["beats_pretrained_median_on_both"]
        cells.append("" if share is None else f"{share:.2f}")
        cells.append("" if row["unique"] is None else f"{row['unique']:.2f}")
        asked, made = row["calls_per_sample"], row["made_calls_per_sample"]
        cells.append(f"{asked:,.0f}, {made:,.0f}" if asked is not None and made is not None else "")
        cells.append("" if row["wall_seconds"] is None else f"{row['wall_seconds']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default="molecule")
    parser.add_argument("--rewards", nargs="+", default=["qed", "sa"], help="two or more rewards of the domain")
    parser.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=list(DECODERS))
    parser.add_argument("--num_samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if len(args.rewards) < 2:
        parser.error("--rewards needs two or more rewards, e.g. --rewards qed sa")
    out = args.output_dir or REPO / "outputs" / f"pareto-{args.domain}-{'-'.join(args.rewards)}"
    out.mkdir(parents=True, exist_ok=True)
    names = component_names(args.rewards)
    settings = {"num_samples": args.num_samples, "seed": args.seed, "reward": "+".join(names)}
    runs, summaries, commands = {}, {}, {}
    for i, decoder in enumerate(args.decoders, 1):
        command = decode_command(domain=args.domain, rewards=args.rewards, decoder=decoder,
                                 num_samples=args.num_samples, seed=args.seed, out=out / decoder)
        print(f"[{i}/{len(args.decoders)}] {decoder} ...", end=" ", flush=True)
        seconds = run_decoder(command, out / decoder, **settings)
        print("reused" if seconds is None else f"{seconds:.1f} s", flush=True)
        runs[decoder] = read_components(out / decoder, names)
        summaries[decoder] = json.loads((out / decoder / "summary.json").read_text())
        commands[decoder] = " ".join(["python", *command[1:]])
    rows = summarise(runs, summaries, names)
    title = f"{args.domain}: {' vs '.join(names[:2])}, {args.num_samples} samples per decoder, seed {args.seed}"
    plot(out / "pareto.png", runs, names, title)
    report = [f"# Several rewards at once: {args.domain}, reward=[{','.join(args.rewards)}]", "",
              f"`python benchmarks/pareto.py --domain {args.domain} --rewards {' '.join(args.rewards)} --decoders "
              f"{' '.join(args.decoders)} --num_samples {args.num_samples} --seed {args.seed}`: each decoder steers by "
              f"the weighted sum of the components divided by their scales (reward.combine=sum), at its default "
              f"M; medians with 95% percentile bootstrap intervals; 'beats pre-trained median on both': the share "
              f"of samples above pre-trained sampling's median on both of the first two components.", "",
              *table(rows, names), "", "![Pareto fronts](pareto.png)", ""]
    atomic_write_text(out / "pareto.md", "\n".join(report))
    atomic_write_text(out / "pareto.json", json.dumps({"rows": rows, "commands": commands}, indent=2))
    print("\n".join(table(rows, names)))
    print(f"outputs: {out}/ (pareto.png, pareto.md, pareto.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
