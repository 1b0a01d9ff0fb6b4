"""Where decode time goes, measured side by side in one run.

    python benchmarks/speed.py [--quick] [--output benchmarks/speed.json] [--device cpu|cuda]

On the DNA (hepg2_motif) and molecule (qed) defaults, with the shipped models:

(a) batched SVDD-PM (B x M candidates on their own axis, evaluated in chunks of decode.py's CPU
    ``max_batch`` (one call on a GPU), the chosen candidate's denoiser output reused)
    against a per-candidate loop of the same algorithm (the reference code's structure,
    ``benchmarks/per_candidate_loop.py``) on the same model and seeds;
(b) SVDD-PM and SVDD-MC wall time against pre-trained sampling of the same samples;
(c) the fraction of decode time spent outside network (denoiser, value) and reward calls;
(d) the molecule reward's cache hit rate and the speed-up of its process pool and cache;
(e) peak memory against M, with and without a ``max_batch`` cap.

Prints a table and writes JSON. Decoders are called directly (not through trainer.predict), so
the times hold no Lightning start-up.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark import compose_decode  # noqa: E402
from benchmarks.per_candidate_loop import PerCandidateLoopSVDD  # noqa: E402
from svdd_lightning import ops  # noqa: E402
from svdd_lightning.build import build_domain, build_with_checkpoint  # noqa: E402
from svdd_lightning.rewards.build import as_reward  # noqa: E402
from svdd_lightning.cli import accepts  # noqa: E402
from svdd_lightning.build import CPU_MAX_BATCH  # noqa: E402
from svdd_lightning.decoders.pretrained import PretrainedSampler  # noqa: E402
from svdd_lightning.decoders.svdd import SVDD  # noqa: E402
from svdd_lightning.values.posterior_mean import PosteriorMeanValue  # noqa: E402


class Timers:
    """Wall time spent inside chosen modules' forward calls (wrapped instance attributes)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def wrap(self, name: str, module: torch.nn.Module) -> None:
        inner = module.forward

        def timed(*args, **kwargs):
            self.sync()
            tic = time.perf_counter()
            out = inner(*args, **kwargs)
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - tic
            return out

        module.forward = timed

    def reset(self) -> None:
        self.seconds = {}


def load(domain: str, reward_name: str, device: torch.device, **reward_kwargs):
    """The shipped pre-trained model, SVDD-MC value and reward of a task; ``reward_kwargs`` (e.g.
    workers, cache) go to rewards that take them."""
    from hydra.utils import instantiate

    cfg = compose_decode([f"domain={domain}", f"reward={reward_name}", "decoder=svdd_mc", "logger=none"])
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=domain, prefix="diffusion.")
    value = build_with_checkpoint(cfg.value, kind="value", domain=domain, prefix="value.")
    reward = instantiate(cfg.reward, **{k: v for k, v in reward_kwargs.items() if accepts(cfg.reward._target_, k)})
    reward = as_reward(reward, domain=build_domain(cfg))  # rewards over objects run on the domain's objects
    return diffusion.eval().to(device), value.eval().to(device), reward.to(device)


@contextmanager
def clock(device: torch.device):
    box = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    yield box
    if device.type == "cuda":
        torch.cuda.synchronize()
    box["seconds"] = time.perf_counter() - tic


REPEATS = 2  # best of: the first large run in a process is slower here (page faults while memory grows)


def timed_decode(decoder, diffusion, n: int, seed: int, device: torch.device, repeats: int = REPEATS,
                 timers: Timers | None = None) -> tuple[float, np.ndarray, dict]:
    """Best wall time of ``repeats`` runs; ``timers`` is left holding the best run's split."""
    best, best_split = float("inf"), {}
    for _ in range(repeats):
        if timers is not None:
            timers.reset()
        with clock(device) as c:
            out = decoder(diffusion, n, ops.make_generators(seed, range(n)))
        if c["seconds"] < best:
            best, best_split = c["seconds"], dict(timers.seconds) if timers is not None else {}
    if timers is not None:
        timers.seconds = best_split
    return best, out.rewards.float().cpu().numpy(), out.info["nfe"]


def part_a_b_c(domain: str, reward_name: str, n: int, m: int, device: torch.device, with_loop: bool) -> dict:
    diffusion, value, reward = load(domain, reward_name, device, workers=0)  # in-process reward: (c) measures it
    timers = Timers(device)
    timers.wrap("denoiser", diffusion.network)
    timers.wrap("value", value.network)
    timers.wrap("reward", reward)
    cap = None if device.type == "cuda" else CPU_MAX_BATCH  # decode.py's decoder.max_batch=auto
    pm_value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    pm = SVDD(reward=reward, value=pm_value, num_candidates=m, max_batch=cap)
    mc = SVDD(reward=reward, value=value, num_candidates=m, max_batch=cap)
    runs = {"pretrained": PretrainedSampler(reward=reward), "svdd_pm": pm, "svdd_mc": mc}
    if cap is not None:
        runs["svdd_pm_one_call_per_step"] = SVDD(reward=reward, value=pm_value, num_candidates=m, max_batch=None)
    if with_loop:
        runs["svdd_pm_per_candidate_loop"] = PerCandidateLoopSVDD(reward=reward, num_candidates=m)
    out = {"domain": domain, "reward": reward_name, "num_samples": n, "num_candidates": m,
           "steps": diffusion.num_steps, "runs": {}}
    timed_decode(PretrainedSampler(reward=reward), diffusion, 2, 99, device)  # warm-up (allocator, kernels)
    for name, decoder in runs.items():
        seconds, rewards, nfe = timed_decode(decoder, diffusion, n, 0, device, timers=timers)
        inside = sum(timers.seconds.values())
        out["runs"][name] = {"seconds": round(seconds, 3), "samples_per_second": round(n / seconds, 3),
                             "median_reward": float(np.median(rewards)), "nfe_per_sample": {k: v / n for k, v in nfe.items()},
                             "seconds_in": {k: round(v, 3) for k, v in timers.seconds.items()},
                             "fraction_outside_calls": round(max(0.0, seconds - inside) / seconds, 4)}
        print(f"  {domain}: {name}: {seconds:.1f} s ({n / seconds:.2f} samples/s), "
              f"outside network+reward calls {100 * out['runs'][name]['fraction_outside_calls']:.1f}%", flush=True)
    if with_loop:
        # The gain of batching depends on how busy one call keeps the hardware: also at small batches.
        out["loop_over_batched_by_batch_size"] = {}
        for b in sorted({1, 4, n}):
            loop_s, _, _ = timed_decode(PerCandidateLoopSVDD(reward=reward, num_candidates=m), diffusion, b, 0, device)
            batched_s, _, _ = timed_decode(pm, diffusion, b, 0, device)
            out["loop_over_batched_by_batch_size"][b] = round(loop_s / batched_s, 2)
            print(f"  {domain}: batch {b}: per-candidate loop {loop_s:.1f} s, batched {batched_s:.1f} s "
                  f"({loop_s / batched_s:.2f}x)", flush=True)
    r = out["runs"]
    pre = r["pretrained"]["seconds"]
    out["ratios"] = {"svdd_pm_over_pretrained": round(r["svdd_pm"]["seconds"] / pre, 2),
                     "svdd_mc_over_pretrained": round(r["svdd_mc"]["seconds"] / pre, 2)}
    if "svdd_pm_one_call_per_step" in r:
        out["ratios"]["one_call_over_chunked"] = round(r["svdd_pm_one_call_per_step"]["seconds"] / r["svdd_pm"]["seconds"], 2)
    if with_loop:
        out["ratios"]["per_candidate_loop_over_batched"] = round(
            r["svdd_pm_per_candidate_loop"]["seconds"] / r["svdd_pm"]["seconds"], 2)
    return out


def part_d(n: int, m: int, device: torch.device) -> dict:
    """Molecule SVDD-PM with the QED reward scored plainly, memoised, and memoised + pooled."""
    results = {}
    for label, workers, cache in (("plain", 0, False), ("cache", 0, True), ("cache+pool", None, True)):
        diffusion, _, reward = load("molecule", "qed", device, workers=workers, cache=cache)
        reward.scorer.min_pool_batch = 16
        timers = Timers(device)
        timers.wrap("reward", reward)
        pm = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m)
        seconds, rewards, _ = timed_decode(pm, diffusion, n, 0, device, repeats=1)  # a second run would hit the cache
        stats = reward.cache_stats()
        reward.scorer.close()
        results[label] = {"seconds": round(seconds, 3), "reward_seconds": round(timers.seconds.get("reward", 0.0), 3),
                          "median_reward": float(np.median(rewards)), "cache": stats}
        print(f"  molecule reward {label}: {seconds:.1f} s total, {timers.seconds.get('reward', 0.0):.1f} s in the "
              f"reward, hit rate {stats['hit_rate']:.2f}, workers {stats['workers']}", flush=True)
    plain = results["plain"]
    results["speedup"] = {
        "cache_reward_time": round(plain["reward_seconds"] / max(results["cache"]["reward_seconds"], 1e-9), 2),
        "cache_pool_reward_time": round(plain["reward_seconds"] / max(results["cache+pool"]["reward_seconds"], 1e-9), 2),
        "cache_pool_total": round(plain["seconds"] / results["cache+pool"]["seconds"], 2)}
    return results


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_child(conn, domain: str, reward_name: str, n: int, m: int, cap: int | None, steps: int) -> None:
    from svdd_lightning.allocator import keep_freed_memory

    # With freed memory kept, resident memory never shrinks: its growth over the decode is the peak the
    # decode needed (ru_maxrss would be the import/load peak instead).
    keep_freed_memory()
    torch.set_num_threads(1)
    diffusion, _, reward = load(domain, reward_name, torch.device("cpu"), workers=0)
    diffusion.num_steps = steps  # the peak of one step repeats every step
    pm = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m,
              max_batch=cap)
    base = _resident_mb()
    pm(diffusion, n, ops.make_generators(0, range(n)))
    conn.send(_resident_mb() - base)
    conn.close()


def part_e(n: int, ms: list[int], cap: int, device: torch.device) -> list[dict]:
    rows = []
    for m in ms:
        row = {"num_candidates": m}
        for label, c in (("uncapped", None), (f"max_batch={cap}", cap)):
            if device.type == "cuda":
                diffusion, _, reward = load("dna", "hepg2_motif", device, workers=0)
                torch.cuda.reset_peak_memory_stats()
                pm = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion),
                          num_candidates=m, max_batch=c)
                diffusion.num_steps = 4
                pm(diffusion, n, ops.make_generators(0, range(n)))
                row[label] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            else:
                # A fresh process per point (spawn, not fork: a forked child would reuse memory the parent
                # already holds) with glibc's default allocator, so ru_maxrss growth is this decode's peak.
                ctx = multiprocessing.get_context("spawn")
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_peak_child, args=(child, "dna", "hepg2_motif", n, m, c, 4))
                proc.start()
                row[label] = round(parent.recv(), 1)
                proc.join()
        rows.append(row)
        print(f"  peak memory growth, M={m}: " + ", ".join(f"{k} {v} MB" for k, v in row.items() if k != "num_candidates"),
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "speed.json"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num_samples", type=int, default=None)
    parser.add_argument("--only_memory", action="store_true", help="run part (e) alone")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    n = args.num_samples or (4 if args.quick else 32)
    m = 10
    from svdd_lightning.cli import quiet_lightning

    quiet_lightning()
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
              f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
              "torch": torch.__version__, "num_samples": n, "num_candidates": m}
    print(f"speed benchmark on {report['device']}: {n} samples, M={m}")
    if args.only_memory:
        rows = part_e(max(2, n // 2), [1, 5, 10, 20, 40], cap=CPU_MAX_BATCH, device=device)
        path = Path(args.output)
        report = json.loads(path.read_text()) if path.is_file() else report
        report["peak_memory_mb"] = rows
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path} (peak_memory_mb)")
        return 0
    report["dna"] = part_a_b_c("dna", "hepg2_motif", n, m, device, with_loop=True)
    report["molecule"] = part_a_b_c("molecule", "qed", n, m, device, with_loop=True)
    report["reward_pool_and_cache"] = part_d(n, m, device)
    report["peak_memory_mb"] = part_e(max(2, n // 2), [1, 5, 10, 20, 40], cap=CPU_MAX_BATCH, device=device)

    rows = [("(a) per-candidate loop / batched SVDD-PM, DNA M=10", report["dna"]["ratios"]["per_candidate_loop_over_batched"]),
            *[(f"(a) ... DNA, batch of {b}", v) for b, v in report["dna"]["loop_over_batched_by_batch_size"].items()],
            ("(a) per-candidate loop / batched SVDD-PM, molecule M=10",
             report["molecule"]["ratios"]["per_candidate_loop_over_batched"]),
            ("(a) one call on all B x M / chunks of max_batch, SVDD-PM DNA",
             report["dna"]["ratios"].get("one_call_over_chunked")),
            ("(b) SVDD-PM / pre-trained wall time, DNA", report["dna"]["ratios"]["svdd_pm_over_pretrained"]),
            ("(b) SVDD-MC / pre-trained wall time, DNA", report["dna"]["ratios"]["svdd_mc_over_pretrained"]),
            ("(b) SVDD-PM / pre-trained wall time, molecule", report["molecule"]["ratios"]["svdd_pm_over_pretrained"]),
            ("(b) SVDD-MC / pre-trained wall time, molecule", report["molecule"]["ratios"]["svdd_mc_over_pretrained"]),
            ("(c) time outside calls, SVDD-PM DNA", report["dna"]["runs"]["svdd_pm"]["fraction_outside_calls"]),
            ("(c) time outside calls, SVDD-PM molecule", report["molecule"]["runs"]["svdd_pm"]["fraction_outside_calls"]),
            ("(d) reward cache hit rate, molecule SVDD-PM",
             report["reward_pool_and_cache"]["cache+pool"]["cache"]["hit_rate"]),
            ("(d) reward-time speed-up, cache", report["reward_pool_and_cache"]["speedup"]["cache_reward_time"]),
            ("(d) reward-time speed-up, cache + pool", report["reward_pool_and_cache"]["speedup"]["cache_pool_reward_time"]),
            ("(d) total speed-up, cache + pool", report["reward_pool_and_cache"]["speedup"]["cache_pool_total"])]
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'measure':<{width}}value")
    for name, value in rows:
        print(f"{name:<{width}}{value}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    sys.exit(main())
