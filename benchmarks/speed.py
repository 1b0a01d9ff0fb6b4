"""Where decode time goes, measured side by side in one run.

    python benchmarks/speed.py [--quick] [--num_samples 64] [--output benchmarks/speed.json] [--device cpu|cuda]
                               [--extras] [--loop_only [--tasks dna,rna,molecule] [--label after]]

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
    SVDD-PM and SVDD-MC against pre-trained sampling, the reward's pool and cache;
(6) the loop's own time per step (``--loop_only`` runs this part alone, in a few minutes here): SVDD-PM at
    B x M = 640 rows (B = 64, M = 10), the time per denoising step outside the denoiser network and the reward,
    split into the per-sample generators' draws (``ops.rand`` / ``ops.randn``: CPU work on any device, so a bound
    on GPU throughput), deduplication's ``torch.unique``, ``denoise`` outside its network and the rest (on a GPU
    those three become device work plus kernel launches); and the per-sample generators' draws of one step's
    shapes at 640 rows against one vectorised draw of the same shape (other numbers, so a reference only).
    ``--label before|after`` files the numbers under that name, keeping the other labels.

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
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
from svdd_lightning import distinct as distinct_module, ops  # noqa: E402
from svdd_lightning.build import CPU_MAX_BATCH, compile_networks  # noqa: E402
from svdd_lightning.calls import measured  # noqa: E402
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
        out, made = measured(decoder, diffusion, n, gens)
    inside = sum(timers.seconds.values())
    return out, {"seconds": round(c["seconds"], 3), "samples_per_second": round(n / c["seconds"], 3),
                 "median_reward": float(np.median(out.rewards.float().cpu().numpy())),
                 "calls_per_sample": {k: v / n for k, v in made.items()},  # made (measured)
                 "requested_per_sample": {k: v / n for k, v in out.info["asked"].items()},
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


LOOP_SAMPLES = 64  # B x M = 640 rows per step


def loop_overhead(domain: str, reward_name: str, device: torch.device, n: int = LOOP_SAMPLES, m: int = M,
                  repeats: int = 1) -> dict:
    """SVDD-PM (decode.py's settings, in-process reward) with every step timed: the loop's own time per step is
    the step's wall time less the time inside the denoiser network and the reward, split into the per-sample
    generators' draws (``ops.rand``/``ops.randn``, moved to the device included), deduplication's unique rows,
    ``diffusion.denoise`` outside its network (the masked model's log-softmax and carry-over: device arithmetic on
    a GPU) and the rest (candidate arithmetic, gathers, bookkeeping). Best of ``repeats`` decodes."""
    diffusion, _, _ = load(domain, reward_name, device)
    cap = None if device.type == "cuda" else CPU_MAX_BATCH
    timers = Timers(device)
    timers.wrap("denoiser", diffusion.network)
    restore = [timers.wrap_function("draws", ops, "rand"), timers.wrap_function("draws_normal", ops, "randn"),
               timers.wrap_function("dedup", distinct_module, "distinct_rows"),
               timers.wrap_function("denoise_total", diffusion, "denoise")]  # the network's call included
    inside_kinds = ("denoiser", "reward")
    best = None
    try:
        warm = load_reward(domain, reward_name, device, workers=0)
        SVDD(reward=warm, value=PosteriorMeanValue(reward=warm, diffusion=diffusion), num_candidates=m,
             max_batch=cap)(diffusion, 2, ops.make_generators(99, range(2)))  # allocator, kernels
        for _ in range(repeats):
            reward = load_reward(domain, reward_name, device, workers=0)
            timers.wrap("reward", reward)
            decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion),
                           num_candidates=m, max_batch=cap)
            marks: list[tuple[float, dict[str, float]]] = []

            def mark() -> None:
                timers.sync()
                marks.append((time.perf_counter(), dict(timers.seconds)))

            inner_steps = decoder.steps

            def steps(diffusion_, inner_steps=inner_steps):
                for t in inner_steps(diffusion_):
                    mark()
                    yield t
                mark()

            decoder.steps = steps
            timers.reset()
            gens = ops.make_generators(0, range(n))
            with clock(device) as c:
                out = decoder(diffusion, n, gens)
            per_step = []
            for (t0, s0), (t1, s1) in zip(marks, marks[1:]):
                delta = {k: s1.get(k, 0.0) - s0.get(k, 0.0) for k in set(s0) | set(s1)}
                wall = t1 - t0
                own = wall - sum(delta.get(k, 0.0) for k in inside_kinds)
                draws = delta.get("draws", 0.0) + delta.get("draws_normal", 0.0)
                post = delta.get("denoise_total", 0.0) - delta.get("denoiser", 0.0)
                per_step.append({"wall": wall, "own": own, "draws": draws, "dedup": delta.get("dedup", 0.0),
                                 "denoise_post": post, "rest": own - draws - delta.get("dedup", 0.0) - post})
            if best is None or c["seconds"] < best[0]:
                best = (c["seconds"], per_step, dict(timers.seconds), out)
    finally:
        for undo in restore:
            undo()
    seconds, per_step, split, out = best
    ms = lambda key, f=np.mean: round(1e3 * float(f([s[key] for s in per_step])), 3)  # noqa: E731
    own = [s["own"] for s in per_step]
    row = {"domain": domain, "reward": reward_name, "num_samples": n, "num_candidates": m, "rows_per_step": n * m,
           "steps": len(per_step), "max_batch": cap, "seconds": round(seconds, 3),
           "seconds_in": {k: round(v, 3) for k, v in split.items()},
           "step_ms": ms("wall"), "loop_ms_per_step": ms("own"), "loop_ms_per_step_median": ms("own", np.median),
           "loop_ms_per_step_p90": round(1e3 * float(np.percentile(own, 90)), 3),
           "draws_ms_per_step": ms("draws"), "dedup_ms_per_step": ms("dedup"),
           "denoise_post_ms_per_step": ms("denoise_post"), "rest_ms_per_step": ms("rest"),
           "loop_fraction": round(sum(own) / sum(s["wall"] for s in per_step), 4),
           "samples_sha256": hashlib.sha256(out.samples.cpu().numpy().tobytes()).hexdigest()[:16]}
    print(f"  {domain}: {row['steps']} steps at {n * m} rows: step {row['step_ms']:.1f} ms, loop's own "
          f"{row['loop_ms_per_step']:.2f} ms/step (median {row['loop_ms_per_step_median']:.2f}; draws "
          f"{row['draws_ms_per_step']:.2f}, unique {row['dedup_ms_per_step']:.2f}, denoise outside the network "
          f"{row['denoise_post_ms_per_step']:.2f}, rest {row['rest_ms_per_step']:.2f}), "
          f"samples {row['samples_sha256']}", flush=True)
    return row


def draw_shapes(domain: str, reward_name: str, device: torch.device, m: int = M) -> dict[str, tuple[int, ...]]:
    """The shapes one sample draws per SVDD step: masked models a (M, L) reveal uniform and (M, L, V) Gumbel
    uniforms (the Gumbel of the selection, alpha > 0, is (M,)); Gaussian models (M, *event) normals."""
    diffusion, _, _ = load(domain, reward_name, device)
    if diffusion.states_can_repeat:
        gumbel = (m, diffusion.seq_len, diffusion.vocab_size)
        return {"uniform": (m, diffusion.seq_len), "gumbel_uniforms": gumbel, "gumbel": gumbel}
    return {"normal": (m, *diffusion.event_shape)}


def generator_draws(shapes: dict[str, tuple[int, ...]], device: torch.device, n: int = LOOP_SAMPLES,
                    repeats: int = 30) -> dict:
    """Per-sample generators' draws of each shape for ``n`` samples (``ops.rand``/``ops.randn``, the decoders'
    path), the same draws stacked row by row and then moved (what ``ops`` did before), and one vectorised draw of
    the whole (n, *shape) from one generator (other numbers: the floor of a counter-based or device generator,
    not something decoders may use). ``gumbel_uniforms`` are what masked ``propose`` draws (it transforms only the
    revealed positions' numbers); ``gumbel`` adds the transform of all of them (``ops.gumbel``). Median
    milliseconds of ``repeats``; ``same_numbers``: ops equals the stack (the numbers decoders drew before)."""
    out = {}
    for kind, shape in shapes.items():
        normal = kind == "normal"
        fill = torch.randn if normal else torch.rand
        gumbel = kind == "gumbel"

        def per_sample(gens):
            draw = (ops.randn if normal else ops.rand)(gens, shape, device)
            return ops.gumbel_of(draw) if gumbel else draw

        def stacked(gens):
            draw = torch.stack([fill(shape, generator=g) for g in gens]).to(device)
            return ops.gumbel_of(draw) if gumbel else draw

        def vectorised(gens):
            draw = fill((len(gens), *shape), generator=gens[0]).to(device)
            return ops.gumbel_of(draw) if gumbel else draw

        row = {"shape_per_sample": list(shape), "rows": n * shape[0], "numbers": n * int(np.prod(shape))}
        for label, fn in (("per_sample_ms", per_sample), ("stacked_ms", stacked), ("vectorised_ms", vectorised)):
            times = []
            for r in range(repeats + 1):
                gens = ops.make_generators(r, range(n))
                with clock(device) as c:
                    fn(gens)
                times.append(c["seconds"])
            row[label] = round(1e3 * float(np.median(times[1:])), 3)
        row["same_numbers"] = bool(torch.equal(per_sample(ops.make_generators(7, range(n))).cpu(),
                                               stacked(ops.make_generators(7, range(n))).cpu()))
        out[kind] = row
        print(f"  draws {kind} {tuple(shape)} x {n} samples: per-sample generators {row['per_sample_ms']:.2f} ms "
              f"(stacked {row['stacked_ms']:.2f} ms), one vectorised draw {row['vectorised_ms']:.2f} ms, "
              f"same numbers as the stack: {row['same_numbers']}", flush=True)
    return out


def loop_part(tasks, device: torch.device, repeats: int) -> dict:
    """Part (6) for ``tasks``: the loop's own time per step, and the generators' draws of the first task."""
    result = {"device": device.type, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"),
              "loop": {d: loop_overhead(d, r, device, repeats=repeats) for d, r in tasks}}
    result["draws"] = {d: generator_draws(draw_shapes(d, r, device), device) for d, r in tasks[:1]}
    return result


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
    parser.add_argument("--loop_only", action="store_true",
                        help="run part (6) alone (default task: dna), merged into the JSON under --label")
    parser.add_argument("--label", default="current", help="part (6)'s numbers are filed under this name")
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
    if args.loop_only:
        wanted = (args.tasks or "dna").split(",")
        tasks = [t for t in DEFAULT_TASKS if t[0] in wanted]
        path = Path(args.output)
        report = json.loads(path.read_text()) if path.is_file() else report
        report.setdefault("loop_overhead", {})[args.label] = loop_part(tasks, device, args.repeats or 1)
        print_loop(report["loop_overhead"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")
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
    if not args.quick:
        previous = Path(args.output)
        kept = json.loads(previous.read_text()).get("loop_overhead", {}) if previous.is_file() else {}
        report["loop_overhead"] = {**kept, args.label: loop_part([t for t in tasks if t[0] == "dna"] or tasks[:1],
                                                                 device, 1)}

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
    if "loop_overhead" in report:
        print_loop(report["loop_overhead"])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


def print_loop(by_label: dict) -> None:
    """Part (6) as a table: one line per label and task, then the draws."""
    print(f"\n{'label':<10}{'task':<10}{'rows':>6}{'step ms':>9}{'loop ms':>9}{'median':>8}{'draws':>8}{'unique':>8}"
          f"{'logits':>8}{'rest':>8}{'samples':>18}")
    for label, part in by_label.items():
        for domain, r in part["loop"].items():
            print(f"{label:<10}{domain:<10}{r['rows_per_step']:>6}{r['step_ms']:>9.1f}{r['loop_ms_per_step']:>9.2f}"
                  f"{r['loop_ms_per_step_median']:>8.2f}{r['draws_ms_per_step']:>8.2f}{r['dedup_ms_per_step']:>8.2f}"
                  f"{r['denoise_post_ms_per_step']:>8.2f}{r['rest_ms_per_step']:>8.2f}{r['samples_sha256']:>18}")
    print(f"\n{'label':<10}{'draw':<24}{'per-sample ms':>14}{'stacked ms':>11}{'vectorised ms':>14}{'same':>6}")
    for label, part in by_label.items():
        for domain, kinds in part["draws"].items():
            for kind, r in kinds.items():
                name = f"{domain} {kind} {tuple(r['shape_per_sample'])}"
                print(f"{label:<10}{name:<24}{r['per_sample_ms']:>14.2f}{r['stacked_ms']:>11.2f}"
                      f"{r['vectorised_ms']:>14.2f}{str(r['same_numbers']):>6}")


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    sys.exit(main())
