"""Ehrlich functions (holo): every decoder against holo's genetic algorithm at equal reward calls (issue 26).

    python benchmarks/ehrlich.py --output_dir outputs/ehrlich            # both presets, 3 seeds, every budget
    python benchmarks/ehrlich.py --output_dir outputs/ehrlich --report_only

Each decoder returns ``--num_samples`` designs per run (16 by default) through decode.py's own code path (the
benchmark's run_one: a finished run is never decoded again, so a stopped comparison resumes where it was) at a
ladder of budgets (``decoder.num_candidates``: Best-of-N's N, SVDD's M, SMC's particles, beam's A x K). holo's
``DiscreteEvolution`` starts from the same number of samples of the function's Markov process (``initial_solution``)
and runs generation after generation to about 10^5 reward calls; its best-so-far and population median are read
at every generation.

What is counted: the x axis is reward plus value calls asked for by the run (the GA asks only rewards; SVDD-MC's
calls are mostly value-network calls, and its value was trained once on rollouts whose reward calls are reported
apart, ``value_training_reward_calls``), and the wall seconds of the run (decode.py's, which include the
denoiser; the GA's, which have no model). A decoder's ``best`` is the best of the designs it returns (not of every
candidate it scored); the GA's is the best particle it ever evaluated. ``median``, ``solved_fraction`` and
``feasible_fraction`` are over the returned designs (the GA: its current population).

Intervals: mean over seeds with a 95% Student-t interval (3 seeds: mean +- 4.30 sd / sqrt(3)).
Writes ``ehrlich.json`` (every run), ``ehrlich.md`` (tables) and ``ehrlich_<preset>.png`` into --output_dir.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PRESETS = ("moderate", "hard")
# Budgets per decoder: decoder.num_candidates (beam: A x K from benchmark_plan.beam_shape). With 16 samples of 32
# steps they span about 10^2.5 to 10^5 reward calls per run (SVDD: 16 x (31 M + 1)); Best-of-N stops at N = 512
# (8k calls): its denoiser runs every chain to the end (T rows per reward call), which at 10^5 calls took minutes.
BUDGETS = {"pretrained": (1,), "best_of_n": (8, 32, 128, 512), "svdd_pm": (1, 4, 16, 64, 200),
           "svdd_r": (4, 16, 64, 200), "svdd_mc": (1, 4, 16, 64, 200), "smc": (1, 4, 16, 64, 192),
           "beam": (2, 4, 16, 64, 200), "svdd_smc": (1, 4, 16, 64, 200),
           "tree": (1, 4, 16)}
QUICK_BUDGETS = {"pretrained": (1,), "best_of_n": (4, 16), "svdd_pm": (1, 4), "svdd_r": (4,), "svdd_mc": (1, 4),
                 "smc": (1, 4), "beam": (2, 4), "svdd_smc": (4,), "tree": (1, 4)}
# holo's genetic algorithm: its own defaults (mutation 0.2 per letter, uniform recombination 0.5, survival 0.5), with
# the population the decoders return, and a gentler variant (mutation 1 / dim per letter, no recombination). With
# holo's defaults a child has about 6 letters redrawn, so about 12 new transitions, each banned with probability
# 6-7 / 32 in these functions: about 5% of children stay feasible.
GA_VARIANTS = {"ga": {"mutation_prob": 0.2, "recombine_prob": 0.5},
               "ga_gentle": {"mutation_prob": None, "recombine_prob": 0.0}}  # None: 1 / dim
GA_CALLS = 100_000
EXTRA_OPTIONS: list[str] = []  # --options: more decode.py options for every decoder run (e.g. a test's checkpoint)
T_975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 8: 2.365, 10: 2.262}


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95% Student-t interval of the mean over seeds."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = T_975.get(len(values), 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


# -- the decoders ------------------------------------------------------------------------------------------------ #

def decoder_row(*, preset: str, decoder: str, budget: int, seed: int, num_samples: int, out: Path) -> dict:
    from svdd_lightning.tasks.benchmark_run import run_one
    from svdd_lightning.tasks.benchmark_rows import is_ok

    more = [f"ehrlich={preset}", *EXTRA_OPTIONS]
    # run_one spends the budget as the benchmark does (decoder.num_candidates; beam: A x K = budget)
    row = run_one(domain="ehrlich", reward="ehrlich", decoder=decoder, num_samples=num_samples,
                  batch_size=num_samples, num_candidates=budget, seed=seed,
                  run_dir=out / "runs" / f"{preset}-{decoder}-b{budget}-seed{seed}", more_options=more)
    base = {"preset": preset, "method": decoder, "budget": budget, "seed": seed, "status": row["status"]}
    if not is_ok(row):
        return {**base, "reason": row.get("reason", "")}
    asked = row["calls"]["asked"]
    nat = row["naturalness"]
    rewards = row["rewards"]
    return {**base, "reward_calls": asked["reward"], "value_calls": asked["value"], "denoiser_calls": asked["denoiser"],
            "calls": asked["reward"] + asked["value"], "wall_seconds": row["wall_seconds"],
            "best": max(rewards), "median": statistics.median(rewards),
            "solved_fraction": nat.get("solved_fraction", 0.0), "feasible_fraction": nat.get("feasible_fraction", 0.0)}


# -- holo's genetic algorithm ------------------------------------------------------------------------------------ #

def ga_rows(*, preset: str, variant: str, seed: int, population: int, out: Path) -> list[dict]:
    """One GA run to GA_CALLS reward calls, read at every generation (kept at about 4 points per decade)."""
    path = out / "runs" / f"{preset}-{variant}-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    import torch
    from holo.optim import DiscreteEvolution
    from omegaconf import OmegaConf

    from svdd_lightning.atomic import atomic_write_text
    from svdd_lightning.domains.ehrlich import FUNCTION_KEYS, OPTIMUM, ehrlich_values, holo_ehrlich
    from svdd_lightning.paths import CONFIG_DIR

    node = OmegaConf.load(CONFIG_DIR / "ehrlich" / f"{preset}.yaml")
    function = holo_ehrlich(**{k: node[k] for k in FUNCTION_KEYS})
    mutation = GA_VARIANTS[variant]["mutation_prob"] or 1.0 / function.dim
    # The same number of Markov-process samples as the decoders return, different per seed (holo's
    # initial_solution always draws the same ones, so draw more and take a seeded subset).
    pool = function.initial_solution(population * 16)
    start = pool[torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))[:population]]
    torch.manual_seed(seed)  # holo's optimiser draws from torch's global generator
    param = torch.nn.Parameter(start[0].clone().float())
    recombine = GA_VARIANTS[variant]["recombine_prob"]
    optimiser = DiscreteEvolution([param], vocab=list(range(function.num_states)), mutation_prob=mutation,
                                  recombine_prob=recombine, num_particles=population, survival_quantile=0.5)
    optimiser.state[param]["particles"] = start.clone().float()
    state = {"calls": 0, "best": -math.inf}
    snapshot: dict = {}

    banned = function.transition_matrix == 0
    jitter = torch.Generator().manual_seed(seed)

    def closure(particles):
        tokens = particles[0].long()
        values = ehrlich_values(function, tokens)
        state["calls"] += tokens.shape[0]
        state["best"] = max(state["best"], float(values.max()))
        finite = torch.isfinite(values)
        # the reward as the decoders see it: infeasible at the reward's floor (-1)
        floored = torch.where(finite, values, torch.full_like(values, -1.0))
        snapshot.update(median=statistics.median(floored.tolist()), feasible=float(finite.double().mean()),
                        solved=float((values >= OPTIMUM).double().mean()))
        # The loss holo minimises. holo keeps the particles at or below the loss's median; with one loss for every
        # infeasible particle, a population with 9 or more of 16 infeasible would keep them all and never select
        # again (holo mutates survivors too, so it drifts). So infeasible particles are graded by their banned
        # transitions (1 + count / dim, above every feasible loss), and a tiny seeded jitter breaks ties: exactly
        # half survive, feasible ones first.
        count = banned[tokens[:, :-1], tokens[:, 1:]].sum(1).double()
        loss = torch.where(finite, -values.double(), 1.0 + count / function.dim)
        return loss + 1e-9 * torch.rand(loss.shape, generator=jitter, dtype=torch.float64)

    marks = sorted({int(round(10 ** (k / 4))) for k in range(4, 21)})  # 10 .. 10^5, four per decade
    rows, tic = [], time.perf_counter()
    while state["calls"] < GA_CALLS:
        optimiser.step(closure)
        if not marks or state["calls"] >= marks[0] or state["calls"] >= GA_CALLS:
            while marks and state["calls"] >= marks[0]:
                marks.pop(0)
            rows.append({"preset": preset, "method": variant, "budget": state["calls"] // population, "seed": seed,
                         "status": "ok", "reward_calls": state["calls"], "value_calls": 0, "denoiser_calls": 0,
                         "calls": state["calls"], "wall_seconds": time.perf_counter() - tic,
                         "best": state["best"] if math.isfinite(state["best"]) else -1.0,
                         "median": snapshot["median"], "solved_fraction": snapshot["solved"],
                         "feasible_fraction": snapshot["feasible"], "population": population,
                         "mutation_prob": mutation, "recombine_prob": recombine})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rows) + "\n")
    return rows


# -- report -------------------------------------------------------------------------------------------------------- #

METRICS = ("best", "median", "solved_fraction", "feasible_fraction")


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (preset, method, budget): the mean over seeds and 95% t-interval of each metric, calls and wall."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["preset"], r["method"], r["budget"] if not r["method"].startswith("ga")
                               else r["reward_calls"]), []).append(r)
    out = []
    for (preset, method, budget), rs in groups.items():
        point = {"preset": preset, "method": method, "budget": budget, "seeds": len(rs),
                 "calls": statistics.fmean(r["calls"] for r in rs),
                 "wall_seconds": statistics.fmean(r["wall_seconds"] for r in rs)}
        for m in METRICS:
            mean, lo, hi = t_interval([float(r[m]) for r in rs])
            point[m] = mean
            point[f"{m}_ci"] = [lo, hi]
        out.append(point)
    return sorted(out, key=lambda p: (p["preset"], p["method"], p["calls"]))


def plot(path: Path, points: list[dict], preset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from svdd_lightning.tasks.benchmark_plan import COLOURS

    colours = {**COLOURS, "ga": "tab:brown", "ga_gentle": "tab:pink", "svdd_smc": "tab:olive", "tree": "gold"}
    mine = [p for p in points if p["preset"] == preset]
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5), dpi=100)
    panels = [("calls", "best"), ("calls", "median"), ("calls", "solved_fraction"),
              ("wall_seconds", "best"), ("wall_seconds", "median"), ("calls", "feasible_fraction")]
    for ax, (x, y) in zip(axes.flat, panels):
        for method in dict.fromkeys(p["method"] for p in mine):
            series = sorted((p for p in mine if p["method"] == method), key=lambda p: p[x])
            xs = [p[x] for p in series]
            ax.plot(xs, [p[y] for p in series], marker="o" if not method.startswith("ga") else None, ms=3,
                    color=colours.get(method), label=method)
            ax.fill_between(xs, [p[f"{y}_ci"][0] for p in series], [p[f"{y}_ci"][1] for p in series],
                            color=colours.get(method), alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("reward + value calls per run" if x == "calls" else "wall seconds per run")
        ax.set_ylabel(y.replace("_", " "))
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Ehrlich {preset}: mean over seeds with 95% t-intervals (optimum 1.0; infeasible = -1)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fmt_point(p: dict, metric: str) -> str:
    lo, hi = p[f"{metric}_ci"]
    return f"{p[metric]:.3f} [{lo:.3f}, {hi:.3f}]"


def report(out: Path, rows: list[dict], meta: dict) -> None:
    from svdd_lightning.atomic import atomic_write_text

    points = aggregate(rows)
    presets = list(dict.fromkeys(p["preset"] for p in points))
    for preset in presets:
        plot(out / f"ehrlich_{preset}.png", points, preset)
    atomic_write_text(out / "ehrlich.json", json.dumps({**meta, "runs": rows, "points": points}, indent=1) + "\n")
    md = ["# Ehrlich functions: decoders against holo's genetic algorithm", "",
          f"`{meta['command']}` on {meta['date']} at commit {meta['commit']}, {meta['machine']}: "
          f"{meta['num_samples']} designs per decoder run, seeds {', '.join(map(str, meta['seeds']))}. "
          "Each cell: the mean over seeds [95% t-interval]. Calls: reward + value calls asked for by the run.", ""]
    for preset in presets:
        md += [f"## {preset}", "", f"![{preset}](ehrlich_{preset}.png)", "",
               "| method | budget | calls | wall s | best | median | solved fraction | feasible fraction |",
               "|---|---|---|---|---|---|---|---|"]
        for p in (q for q in points if q["preset"] == preset):
            if p["method"].startswith("ga") and p["calls"] not in _ga_table_calls(points, preset, p["method"]):
                continue
            md.append(f"| {p['method']} | {p['budget']} | {p['calls']:.0f} | {p['wall_seconds']:.2f} | "
                      f"{fmt_point(p, 'best')} | {fmt_point(p, 'median')} | {fmt_point(p, 'solved_fraction')} | "
                      f"{fmt_point(p, 'feasible_fraction')} |")
        md.append("")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        md += ["Runs that did not decode:", ""] + [f"- {r['preset']} {r['method']} budget {r['budget']} seed "
                                                    f"{r['seed']}: {r['status']}: {r.get('reason', '')}" for r in failed]
    atomic_write_text(out / "ehrlich.md", "\n".join(md) + "\n")


def _ga_table_calls(points: list[dict], preset: str, method: str) -> set[float]:
    """The GA's points shown in the table: the first at or past each power of ten (the plot shows them all)."""
    calls = sorted(p["calls"] for p in points if p["preset"] == preset and p["method"] == method)
    return {next(c for c in calls if c >= 10 ** k) for k in range(1, 6) if any(c >= 10 ** k for c in calls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--num_samples", type=int, default=16, help="designs per decoder run, and the GA's population")
    parser.add_argument("--decoders", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--quick", action="store_true", help="two small budgets per decoder (a smoke test)")
    parser.add_argument("--options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more decode.py options for every decoder run, e.g. diffusion.checkpoint=PATH")
    parser.add_argument("--report_only", action="store_true", help="redraw from --output_dir/ehrlich.json")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        data = json.loads((out / "ehrlich.json").read_text())
        report(out, data["runs"], {k: v for k, v in data.items() if k not in ("runs", "points")})
        return 0
    import subprocess

    import torch

    from svdd_lightning.cli import quiet_lightning

    quiet_lightning()
    budgets = QUICK_BUDGETS if args.quick else BUDGETS
    EXTRA_OPTIONS[:] = args.options
    rows: list[dict] = []
    for preset in args.presets:
        for seed in args.seeds:
            for decoder in args.decoders:
                for budget in budgets[decoder]:
                    tic = time.perf_counter()
                    row = decoder_row(preset=preset, decoder=decoder, budget=budget, seed=seed,
                                      num_samples=args.num_samples, out=out)
                    rows.append(row)
                    shown = (f"best {row['best']:.3f}, median {row['median']:.3f}, {row['calls']:.0f} calls"
                             if row["status"] == "ok" else f"{row['status']}: {row.get('reason', '')[:200]}")
                    print(f"{preset} seed {seed} {decoder} b{budget}: {shown} ({time.perf_counter() - tic:.0f} s)",
                          flush=True)
            for variant in GA_VARIANTS:
                ga = ga_rows(preset=preset, variant=variant, seed=seed, population=args.num_samples, out=out)
                rows.extend(ga)
                print(f"{preset} seed {seed} {variant}: best {ga[-1]['best']:.3f} after {ga[-1]['calls']} calls",
                      flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    meta = {"command": "python benchmarks/ehrlich.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "commit": commit, "seeds": args.seeds,
            "num_samples": args.num_samples, "machine": f"{torch.get_num_threads()} CPU thread(s)"}
    report(out, rows, meta)
    print(f"wrote {out / 'ehrlich.md'}, {out / 'ehrlich.json'} and the plots", flush=True)
    return 1 if any(r["status"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    from svdd_lightning.cli import start_process

    start_process()
    sys.exit(main())
