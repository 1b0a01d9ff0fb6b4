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
  ordering checks. Every row has a ``status``: ``ok``, ``skipped`` (the method cannot run there, e.g. no
  SVDD-MC value shipped for that reward) or ``failed`` (it raised; the benchmark exits non-zero), the last
  two with their ``reason``: no cell is left out (svdd_lightning/tasks/benchmark_rows.py);
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
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from callbacks.benchmark_cells import CellLogger
from svdd_lightning.tasks.benchmark_plan import ALL_TASKS, DECODERS, FULL, QUICK, known_decoders
from svdd_lightning.tasks.benchmark_report import report_from, with_intervals, write_report
from svdd_lightning.tasks.benchmark_rows import is_failed
from svdd_lightning.tasks.benchmark_run import run_one, run_scaling, shown
from svdd_lightning.tasks.benchmark_seeds import pooled_row, seed_dir_name


def build_parser() -> argparse.ArgumentParser:
    """benchmark.py's options (tests/test_docs_commands.py parses every benchmark line of the docs with it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the four default tasks with small runs")
    parser.add_argument("--output_dir", required=True, help="where benchmark.md/.json, plots and runs go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S",
                        help="several seeds per table cell, each a decode of --num_samples samples, pooled into one "
                             "row with the seed-to-seed spread beside the bootstrap interval (default: --seed alone)")
    parser.add_argument("--decoders", nargs="+", default=DECODERS, metavar="NAME",
                        help="a subset of methods (default: the library's eleven), or a decoder of your own: a "
                             "decoder/NAME.yaml in a --search_path directory")
    parser.add_argument("--search_path", nargs="+", default=[], metavar="DIR",
                        help="config directories added to decode.py's (as hydra.searchpath), e.g. for your own "
                             "decoder/NAME.yaml")
    parser.add_argument("--tasks", nargs="+", metavar="DOMAIN/REWARD", help="a subset of tasks, e.g. dna/hepg2_motif")
    parser.add_argument("--num_samples", type=int,
                        help="samples per table cell (default: the mode's; also caps the samples per scaling point)")
    parser.add_argument("--batch_size", type=int,
                        help="samples decoded together per table cell, the population of SMC and SVDD-R (default: the "
                             "mode's, at most --num_samples)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
    if args.batch_size:
        if args.batch_size < 1:
            parser.error("--batch_size must be a positive integer")
        changes["batch_size"] = min(args.batch_size, args.num_samples or mode.num_samples)
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
    seeds = list(dict.fromkeys(args.seeds or [args.seed]))
    cells_plan = [(d, r, dec) for d, r in mode.tasks for dec in decoders]
    # Seeds outermost: a run stopped partway has whole tables of its first seeds, not some cells of every seed.
    plan = [(seed, *cell) for seed in seeds for cell in cells_plan]
    per_seed: dict[tuple, list[dict]] = {cell: [] for cell in cells_plan}
    for i, (seed, domain, reward, decoder) in enumerate(plan, 1):
        tic = time.perf_counter()
        row = run_one(domain=domain, reward=reward, decoder=decoder, num_samples=mode.num_samples,
                      batch_size=mode.batch_size, num_candidates=mode.num_candidates, seed=seed,
                      run_dir=out / "runs" / seed_dir_name(f"{domain}-{reward}-{decoder}", seed, seeds),
                      search_path=args.search_path)
        per_seed[(domain, reward, decoder)].append(row)
        label = f" seed {seed}" if len(seeds) > 1 else ""
        print(f"[{i}/{len(plan)}] {domain}/{reward} {decoder}{label}: {shown(row)} "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
    for cell in cells_plan:
        row = pooled_row(per_seed[cell])
        if len(seeds) > 1:  # pooled samples: their intervals (one seed's row has its own already)
            row = with_intervals(row)
        rows.append(row)
        cells.log(row, "table")
    table_seconds = time.perf_counter() - start

    scaling = [] if (args.no_scaling or args.no_ablation) else \
        run_scaling(mode, decoders, rows, seed=seeds[0], out=out, on_row=lambda row: cells.log(row, "scaling"),
                    search_path=args.search_path)

    wall = time.perf_counter() - start
    machine = f"{torch.get_num_threads()} CPU threads" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    meta = {"mode": asdict(mode), "seed": seeds[0], "seeds": seeds, "wall_seconds": round(wall, 1),
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
    broken = [r for r in rows + scaling if is_failed(r)]
    for r in broken:
        print(f"  FAILED: {r['domain']}/{r['reward']} {r['decoder']} budget {r['budget']}: {r['reason']}")
    return 1 if broken else 0


def cli() -> None:
    """The ``svdd-benchmark`` console script and ``python benchmark.py``."""
    from svdd_lightning.cli import start_process

    start_process()
    sys.exit(main())
