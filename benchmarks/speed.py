"""Where decode time goes, measured side by side in one run.

    python benchmarks/speed.py [--quick] [--num_samples 64] [--output benchmarks/speed.json] [--device cpu|cuda]
                               [--extras]

On the four default tasks (dna/hepg2_motif, rna/mfe, molecule/qed, image/compressibility), SVDD-PM with
M = 10 and decode.py's settings (chunks of ``max_batch=auto``, the reward as decode.py builds it: process pool
and cache, fresh for every run so no run reads another's cache):

(1) deduplication: wall time with and without it (``decoder.dedup``), whether ``samples`` are identical, the
    calls per sample made and asked for, and the distinct-candidate count (the floor for this algorithm: the
    prior's one object plus each step's distinct candidates, counted here by wrapping ``propose``, independently
    of the decoder's own counts), and the fraction of time outside network and reward calls (also for
    pre-trained sampling);
(2) ``torch.compile`` of the denoiser and value networks (``decoder.compile``), off against on: the first run
    (compiling) and the best later run, and how far the samples and rewards move;
(3) the denoiser's achieved FLOP/s (``torch.utils.flop_counter`` per row, times the rows it ran, over the time
    inside it) against this machine's fp32 matmul peak, measured in the same run;
(4) peak memory against M, with and without a ``max_batch`` cap (``benchmarks/memory.py``);
(5) with ``--extras``: the earlier parts (``benchmarks/speed_batching.py``): batched against a per-candidate loop,
    SVDD-PM and SVDD-MC against pre-trained sampling, the reward's pool and cache.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.memory import peak_memory_against_m  # noqa: E402
from benchmarks.timing import DEFAULT_TASKS, Timers, clock, load, load_reward  # noqa: E402
from svdd_lightning import ops  # noqa: E402
from svdd_lightning.build import CPU_MAX_BATCH, compile_networks  # noqa: E402
from svdd_lightning.decoders.pretrained import PretrainedSampler  # noqa: E402
from svdd_lightning.decoders.svdd import SVDD  # noqa: E402
from svdd_lightning.distinct import Distinct  # noqa: E402
from svdd_lightning.values.posterior_mean import PosteriorMeanValue  # noqa: E402

M = 10


class DistinctCandidates:
    """Counts, through ``diffusion.propose``, the distinct objects SVDD-PM must send through the denoiser: the
    prior's (identical) states once, then each step's distinct candidates, except the last step's (clean
    candidates, scored by the reward)."""

    def __init__(self, diffusion) -> None:
        self.count = 0
        self.diffusion = diffusion
        self.inner = diffusion.propose

        def propose(x_t, t, m, generators, denoised=None):
            candidates = self.inner(x_t, t, m, generators, denoised=denoised)
            if int(t) > 1:
                self.count += Distinct.of(candidates.flatten(0, 1)).count
            return candidates

        diffusion.propose = propose

    def reset(self, prior) -> None:
        self.count = Distinct.of(prior).count

    def remove(self) -> None:
        self.diffusion.propose = self.inner


def run_once(decoder, diffusion, n: int, device, timers: Timers, counter: DistinctCandidates | None = None):
    timers.reset()
    gens = ops.make_generators(0, range(n))
    if counter is not None:
        counter.reset(diffusion.prior(n, ops.make_generators(0, range(n))))
    with clock(device) as c:
        out = decoder(diffusion, n, gens)
    inside = sum(timers.seconds.values())
    return out, {"seconds": round(c["seconds"], 3), "samples_per_second": round(n / c["seconds"], 3),
                 "median_reward": float(np.median(out.rewards.float().cpu().numpy())),
                 "calls_per_sample": {k: v / n for k, v in out.info["nfe"].items()},
                 "requested_per_sample": {k: v / n for k, v in out.info["nfe_requested"].items()},
                 "seconds_in": {k: round(v, 3) for k, v in timers.seconds.items()},
                 "denoiser_rows": timers.rows.get("denoiser", 0),  # padding to whole blocks included
                 "fraction_outside_calls": round(max(0.0, c["seconds"] - inside) / c["seconds"], 4)}


def deduplication(domain: str, reward_name: str, n: int, device: torch.device, repeats: int) -> dict:
    """SVDD-PM with and without deduplication, best of ``repeats`` each (a fresh reward every run)."""
    diffusion, _, _ = load(domain, reward_name, device)
    cap = None if device.type == "cuda" else CPU_MAX_BATCH
    timers = Timers(device)
    timers.wrap("denoiser", diffusion.network)
    applies = diffusion.states_can_repeat
    counter = DistinctCandidates(diffusion) if applies else None
    result = {"domain": domain, "reward": reward_name, "num_samples": n, "num_candidates": M,
              "steps": diffusion.num_steps, "dedup_applies": applies, "runs": {}}
    samples = {}
    warm = load_reward(domain, reward_name, device)
    PretrainedSampler(reward=warm)(diffusion, 2, ops.make_generators(99, range(2)))  # allocator, kernels
    modes = (("without_dedup", False), ("with_dedup", True)) if applies else (("with_dedup", True),)
    runs = [("pretrained", None)] + list(modes)
    for name, dedup in runs:
        best = None
        for _ in range(repeats):
            reward = load_reward(domain, reward_name, device)
            timers.wrap("reward", reward)
            if dedup is None:
                decoder = PretrainedSampler(reward=reward)
            else:
                decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion),
                               num_candidates=M, max_batch=cap, dedup=dedup)
            out, row = run_once(decoder, diffusion, n, device, timers, counter if dedup else None)
            close = getattr(getattr(reward, "scorer", None), "close", None)
            if close is not None:
                close()
            if best is None or row["seconds"] < best[1]["seconds"]:
                best = (out, row, counter.count if (counter is not None and dedup) else None)
        out, row, distinct = best
        if distinct is not None:
            row["distinct_candidates_per_sample"] = distinct / n
        result["runs"][name] = row
        samples[name] = out.samples.cpu()
        print(f"  {domain}: {name}: {row['seconds']:.1f} s, denoiser calls/sample {row['calls_per_sample']['denoiser']:.1f}"
              + (f" (distinct candidates {distinct / n:.1f})" if distinct is not None else "")
              + f", outside calls {100 * row['fraction_outside_calls']:.1f}%", flush=True)
    if counter is not None:
        counter.remove()
    if applies:
        with_, without = result["runs"]["with_dedup"], result["runs"]["without_dedup"]
        result["speedup"] = round(without["seconds"] / with_["seconds"], 2)
        result["network_speedup"] = round(without["seconds_in"]["denoiser"] / with_["seconds_in"]["denoiser"], 2)
        result["identical_samples"] = bool(torch.equal(samples["with_dedup"], samples["without_dedup"]))
        result["calls_equal_distinct_count"] = (with_["calls_per_sample"]["denoiser"]
                                                == with_["distinct_candidates_per_sample"])
    return result


def compiled(domain: str, reward_name: str, n: int, device: torch.device) -> dict:
    """SVDD-PM (dedup) with eager networks and with ``torch.compile``d ones: first run and best of two more."""
    result = {"domain": domain, "num_samples": n}
    outs = {}
    for label in ("eager", "compiled"):
        diffusion, _, _ = load(domain, reward_name, device)
        if label == "compiled":
            compile_networks(diffusion)
        cap = None if device.type == "cuda" else CPU_MAX_BATCH
        times = []
        for _ in range(3):
            reward = load_reward(domain, reward_name, device, workers=0)
            decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion),
                           num_candidates=M, max_batch=cap)
            with clock(device) as c:
                out = decoder(diffusion, n, ops.make_generators(0, range(n)))
            times.append(c["seconds"])
        outs[label] = out
        result[label] = {"first_run_seconds": round(times[0], 2), "best_later_seconds": round(min(times[1:]), 2)}
        print(f"  {domain}: {label}: first run {times[0]:.1f} s, later {min(times[1:]):.1f} s", flush=True)
    result["speedup"] = round(result["eager"]["best_later_seconds"] / result["compiled"]["best_later_seconds"], 2)
    result["identical_samples"] = bool(torch.equal(outs["eager"].samples, outs["compiled"].samples))
    result["max_reward_difference"] = float((outs["eager"].rewards - outs["compiled"].rewards).abs().max())
    return result


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul rate (GFLOP/s), best of ``repeats``."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        with clock(device) as c:
            a @ b
        best = min(best, c["seconds"])
    return 2 * size**3 / best / 1e9


def achieved_flops(domain: str, reward_name: str, dedup_row: dict, device: torch.device) -> dict:
    """FLOPs of one denoiser row (flop_counter on a 64-row call / 64) times the rows the timed decode ran
    (padding included), over the seconds inside the denoiser."""
    from torch.utils.flop_counter import FlopCounterMode

    diffusion, _, _ = load(domain, reward_name, device)
    x = diffusion.prior(64, ops.make_generators(0, range(64)))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        diffusion.denoise(x, diffusion.num_steps)
    per_row = counter.get_total_flops() / 64
    run = dedup_row["runs"]["with_dedup"]
    return {"flops_per_row": per_row, "rows": run["denoiser_rows"],
            "gflops_per_second": round(per_row * run["denoiser_rows"] / run["seconds_in"]["denoiser"] / 1e9, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, one repeat (a smoke run)")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "speed.json"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num_samples", type=int, default=None, help="default 64 (quick: 4)")
    parser.add_argument("--tasks", default=None, help="comma-separated domains (default: all four)")
    parser.add_argument("--repeats", type=int, default=None, help="best of this many runs (default 2; quick: 1)")
    parser.add_argument("--compile_samples", type=int, default=16)
    parser.add_argument("--no_compile", action="store_true", help="skip the torch.compile part")
    parser.add_argument("--extras", action="store_true", help="also the earlier parts (speed_batching.py)")
    parser.add_argument("--only_memory", action="store_true", help="run part (4) alone")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    n = args.num_samples or (4 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 2)
    from svdd_lightning.cli import quiet_lightning

    quiet_lightning()
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
              f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
              "torch": torch.__version__, "num_samples": n, "num_candidates": M,
              "date": time.strftime("%Y-%m-%d")}
    print(f"speed benchmark on {report['device']}: {n} samples, M={M}")
    memory_samples = max(2, min(n, 32) // 2)
    if args.only_memory:
        path = Path(args.output)
        report = json.loads(path.read_text()) if path.is_file() else report
        report["peak_memory_mb"] = peak_memory_against_m(memory_samples, [1, 5, 10, 20, 40], cap=CPU_MAX_BATCH,
                                                         device=device)
        path.write_text(json.dumps(report, indent=2) + "\n")
        return 0
    tasks = [t for t in DEFAULT_TASKS if args.tasks is None or t[0] in args.tasks.split(",")]
    report["peak_fp32_matmul_gflops"] = round(matmul_peak(device), 1)
    print(f"  fp32 matmul peak: {report['peak_fp32_matmul_gflops']} GFLOP/s", flush=True)
    report["deduplication"] = {}
    for domain, reward_name in tasks:
        row = deduplication(domain, reward_name, n, device, repeats)
        report["deduplication"][domain] = row
    for domain, reward_name in tasks:
        row = report["deduplication"][domain]
        row["flops"] = achieved_flops(domain, reward_name, row, device)
        row["flops"]["fraction_of_matmul_peak"] = round(row["flops"]["gflops_per_second"]
                                                         / report["peak_fp32_matmul_gflops"], 3)
    if not args.no_compile:
        report["compile"] = {domain: compiled(domain, reward_name, min(n, args.compile_samples), device)
                             for domain, reward_name in tasks}
    report["peak_memory_mb"] = peak_memory_against_m(memory_samples, [1, 5, 10, 20, 40], cap=CPU_MAX_BATCH,
                                                     device=device)
    if args.extras:
        from benchmarks.speed_batching import batching_and_costs, reward_pool_and_cache

        report["batching"] = {d: batching_and_costs(d, r, min(n, 32), M, device, with_loop=True)
                              for d, r in (("dna", "hepg2_motif"), ("molecule", "qed"))}
        report["reward_pool_and_cache"] = reward_pool_and_cache(min(n, 32), M, device)

    print(f"\n{'task':<12}{'no dedup s':>11}{'dedup s':>9}{'speed-up':>9}{'network':>9}{'calls':>8}{'distinct':>9}"
          f"{'same':>6}{'outside':>9}{'GFLOP/s':>9}")
    for domain, row in report["deduplication"].items():
        r = row["runs"]
        without = r.get("without_dedup", {}).get("seconds", float("nan"))
        calls = r["with_dedup"]["calls_per_sample"]["denoiser"]
        distinct = r["with_dedup"].get("distinct_candidates_per_sample", float("nan"))
        print(f"{domain:<12}{without:>11.1f}{r['with_dedup']['seconds']:>9.1f}{row.get('speedup', float('nan')):>9.2f}"
              f"{row.get('network_speedup', float('nan')):>9.2f}{calls:>8.0f}{distinct:>9.0f}"
              f"{str(row.get('identical_samples', '-')):>6}{100 * r['with_dedup']['fraction_outside_calls']:>8.1f}%"
              f"{row['flops']['gflops_per_second']:>9.1f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    sys.exit(main())
