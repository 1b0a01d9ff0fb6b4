"""What distillation bought (issue 28): a distilled model's plain sampling, and SVDD-PM on top of it, against the
original model's pre-trained sampling, Best-of-N and SVDD-PM, with 95% bootstrap intervals.

    python benchmarks/distill.py --task dna/hepg2_motif --distilled DIR [--num_samples 96] [--seeds 0 1 2]
                                 [--svdd_seeds 0] [--original benchmarks/full_run] [--output_dir OUT]

DIR is a ``train.py stage=distill`` output folder (distilled.ckpt, distill.json). The distilled rows are decoded
here (``decode.py diffusion.checkpoint=DIR/distilled.ckpt``, one folder per seed under OUT/runs: an interrupted run
resumes, finished cells are not decoded again); the original model's rows are read from the full benchmark's cells
(``--original``: benchmarks/full_run, the same tasks, sample sizes and seeds). Every row's naturalness is measured
under the *original* model (the log-likelihood of a distilled model's samples under itself would flatter it). On DNA,
a second motif scan that training never saw (liver factors ONECUT1, NR1H4 and PPARA, JASPAR) checks that the gain is
not a hack of the four trained motifs. Writes OUT/distill.json and OUT/distill.md: the table, the rounds, the calls
paid in training and the number of samples after which distilling costs less than running SVDD-PM each time.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from svdd_lightning.atomic import atomic_write_text  # noqa: E402
from svdd_lightning.stats import bootstrap_ci, compare  # noqa: E402

ORIGINAL_METHODS = ("pretrained", "best_of_n", "svdd_pm")
HELDOUT_MOTIFS = ("MA0679.3", "MA1110.3", "MA2338.1")  # ONECUT1 NR1H4 PPARA: liver factors the reward does not scan


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, metavar="DOMAIN/REWARD", help="e.g. dna/hepg2_motif or molecule/qed")
    parser.add_argument("--distilled", required=True, type=Path, help="a train.py stage=distill output folder")
    parser.add_argument("--num_samples", type=int, default=96, help="samples per seed (the full benchmark's: 96)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the plain-sampling row")
    parser.add_argument("--svdd_seeds", type=int, nargs="*", default=[0],
                        help="seeds of SVDD-PM on the distilled model (none: skip that row; it costs M x the calls)")
    parser.add_argument("--original", type=Path, default=REPO / "benchmarks" / "full_run",
                        help="the full benchmark's output folder, whose runs/ hold the original model's cells")
    parser.add_argument("--output_dir", type=Path, default=None, help="default: outputs/distill-DOMAIN-REWARD")
    args = parser.parse_args(argv)
    if "/" not in args.task:
        parser.error(f"--task {args.task!r} must be DOMAIN/REWARD, e.g. dna/hepg2_motif")
    if not (args.distilled / "distilled.ckpt").is_file():
        parser.error(f"--distilled {args.distilled} holds no distilled.ckpt: run train.py stage=distill first")
    return args


def read_samples(run_dir: Path) -> tuple[list[str], list[float]]:
    with open(run_dir / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["sample"] for r in rows], [float(r["reward"]) for r in rows]


class OriginalModel:
    """The original (pre-trained) model and the domain, for naturalness of any samples under it."""

    def __init__(self, domain: str, reward: str) -> None:
        from svdd_lightning.build import build_diffusion, build_domain
        from svdd_lightning.tasks.benchmark_plan import compose_decode

        self.cfg = compose_decode([f"domain={domain}", f"reward={reward}", "decoder=pretrained", "logger=none"])
        self.domain = build_domain(self.cfg)
        self.diffusion = build_diffusion(self.cfg, self.domain).eval()
        self.heldout = None
        if domain == "dna":
            from svdd_lightning.rewards.dna import MotifReward

            self.heldout = MotifReward(matrix_ids=HELDOUT_MOTIFS)

    def measure(self, texts: list[str], seed: int) -> dict[str, float]:
        import torch

        samples = self.domain.from_objects(texts)
        with torch.no_grad():
            out = dict(self.domain.naturalness(samples, diffusion=self.diffusion, seed=seed))
            if self.heldout is not None:
                out["heldout_motifs"] = float(self.heldout(samples).median())
        return out


def pooled(cells: list[Path], original: OriginalModel, seeds: list[int]) -> dict:
    """One row from per-seed cells: pooled rewards with intervals, calls and wall seconds per sample from the
    summaries, naturalness (and the held-out scan) under the original model averaged over seeds."""
    rewards, measures, summaries, medians = [], [], [], []
    for cell, seed in zip(cells, seeds):
        texts, values = read_samples(cell)
        rewards += values
        medians.append(statistics.median(values))
        summary = json.loads((cell / "summary.json").read_text())
        summaries.append(summary)
        try:
            measures.append(original.measure(texts, seed))
        except KeyError:
            # Molecules: a written SMILES, canonicalised, can hold SELFIES tokens outside the model's vocabulary, so
            # the samples cannot be read back for the original model's log-likelihood; the metrics that need no
            # model (validity, uniqueness, diversity) come from the decode's own summary.
            measures.append({k: v for k, v in summary["naturalness"].items() if not k.startswith("log_likelihood")})
    keys = [k for k in measures[0] if all(isinstance(m.get(k), (int, float)) for m in measures)]
    per_sample = [s["calls"]["per_sample"]["asked"]["total"] for s in summaries]
    return {"num_samples": len(rewards), "median": statistics.median(rewards),
            "median_ci": bootstrap_ci(rewards, "median"), "q90_ci": bootstrap_ci(rewards, "q90"),
            "seed_medians": medians,
            "calls_per_sample": statistics.fmean(per_sample),
            "wall_seconds_per_sample": sum(s["wall_seconds"] for s in summaries) / len(rewards),
            "naturalness_under_original": {k: statistics.fmean(m[k] for m in measures) for k in keys},
            "cells": [str(c) for c in cells]}


def decode_distilled(*, domain: str, reward: str, decoder: str, seeds: list[int], num_samples: int,
                     checkpoint: Path, out: Path) -> list[Path]:
    from svdd_lightning.tasks.benchmark_run import run_one
    from svdd_lightning.tasks.benchmark_plan import FULL

    cells = []
    for seed in seeds:
        run_dir = out / "runs" / f"{domain}-{reward}-distilled-{decoder}-seed{seed}"
        row = run_one(domain=domain, reward=reward, decoder=decoder, num_samples=num_samples, batch_size=num_samples,
                      num_candidates=FULL.num_candidates, seed=seed, run_dir=run_dir,
                      more_options=[f"diffusion.checkpoint={checkpoint}"])
        if row["status"] != "ok":
            raise SystemExit(f"distilled {decoder} seed {seed} did not decode: {row.get('reason')}")
        print(f"distilled {decoder} seed {seed}: median {row['median']:.3f}, {row['wall_seconds']:.0f} s", flush=True)
        cells.append(run_dir)
    return cells


def main(argv=None) -> None:
    args = parse_args(argv)
    domain, reward = args.task.split("/", 1)
    out = args.output_dir or REPO / "outputs" / f"distill-{domain}-{reward}"
    out.mkdir(parents=True, exist_ok=True)
    original = OriginalModel(domain, reward)
    record = json.loads((args.distilled / "distill.json").read_text())
    rows = {}
    for method in ORIGINAL_METHODS:
        cells = [args.original / "runs" / f"{domain}-{reward}-{method}-seed{s}" for s in args.seeds]
        missing = [str(c) for c in cells if not (c / "samples.csv").is_file()]
        if missing:
            raise SystemExit(f"--original {args.original} lacks the cells {missing}: run the full benchmark first")
        rows[f"original {method}"] = pooled(cells, original, args.seeds)
    checkpoint = (args.distilled / "distilled.ckpt").resolve()
    rows["distilled pretrained"] = pooled(decode_distilled(
        domain=domain, reward=reward, decoder="pretrained", seeds=args.seeds, num_samples=args.num_samples,
        checkpoint=checkpoint, out=out), original, args.seeds)
    if args.svdd_seeds:
        rows["distilled svdd_pm"] = pooled(decode_distilled(
            domain=domain, reward=reward, decoder="svdd_pm", seeds=args.svdd_seeds, num_samples=args.num_samples,
            checkpoint=checkpoint, out=out), original, args.svdd_seeds)
    plain, bon, svdd = rows["distilled pretrained"], rows["original best_of_n"], rows["original svdd_pm"]
    saving = svdd["calls_per_sample"] - plain["calls_per_sample"]
    import datetime
    import os

    import torch

    report = {
        "command": "python benchmarks/distill.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "machine": f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch thread(s)",
        "training_wall_seconds": record.get("wall_seconds"),
        "task": args.task, "distilled": str(args.distilled), "rows": rows,
        "rounds": record["rounds"], "alpha": record["alpha"], "options": record["options"],
        "training_calls": record["calls_total"],
        "break_even_samples": record["calls_total"] / saving if saving > 0 else None,
        "distilled_vs_best_of_n": compare(plain["median_ci"], bon["median_ci"]),
        "naturalness_change": {k: (plain["naturalness_under_original"][k] - v) / abs(v)
                               for k, v in rows["original pretrained"]["naturalness_under_original"].items()
                               if k in plain["naturalness_under_original"] and v},
    }
    atomic_write_text(out / "distill.json", json.dumps(report, indent=2, default=float) + "\n")
    atomic_write_text(out / "distill.md", render(report))
    print(render(report))


def render(report: dict) -> str:
    rows = report["rows"]
    keys = list(next(iter(rows.values()))["naturalness_under_original"])
    lines = [f"# Distillation on {report['task']}", "",
             f"| row | n | median [95% interval] | calls per sample | {' | '.join(keys)} |",
             "|---|---|---|---|" + "---|" * len(keys)]
    for name, r in rows.items():
        nat = " | ".join(f"{r['naturalness_under_original'].get(k, float('nan')):.3f}" for k in keys)
        lines.append(f"| {name} | {r['num_samples']} | {r['median']:.3f} [{r['median_ci'][0]:.3f}, "
                     f"{r['median_ci'][1]:.3f}] | {r['calls_per_sample']:.0f} | {nat} |")
    lines += ["", "Naturalness is measured under the original model for every row." if "log_likelihood" in keys else
              "Naturalness: metrics that need no model (the samples could not all be read back into the model's "
              "vocabulary for a log-likelihood under the original model).", "",
              f"Distilled plain sampling against Best-of-N: {report['distilled_vs_best_of_n']}.",
              "Relative change of each naturalness metric against the original model's pre-trained samples: "
              + ", ".join(f"{k} {100 * v:+.1f}%" for k, v in report["naturalness_change"].items()) + ".", "",
              f"Training paid {report['training_calls']} calls"
              + (f" and {report['training_wall_seconds'] / 60:.1f} min" if report.get("training_wall_seconds") else "")
              + "; distilling is cheaper than SVDD-PM after "
              + (f"{report['break_even_samples']:.0f} samples." if report["break_even_samples"] else "never."), "",
              "| round | plain samples' median | log-likelihood under the original | calls so far |", "|---|---|---|---|"]
    lines += [f"| {r['round'] + 1} | {r['reward_median']:.3f} | {r['log_likelihood_original']:.1f} | "
              f"{r['calls_total']} |" for r in report["rounds"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
