"""Earlier parts of the speed benchmark (``python benchmarks/speed.py --extras``): batched SVDD-PM against a
per-candidate loop of the same algorithm (the reference code's structure), SVDD-PM and SVDD-MC against pre-trained
sampling, and the molecule reward's process pool and cache."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.per_candidate_loop import PerCandidateLoopSVDD
from benchmarks.timing import Timers, load, timed_decode
from svdd_lightning.build import CPU_MAX_BATCH
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.values.posterior_mean import PosteriorMeanValue


def batching_and_costs(domain: str, reward_name: str, n: int, m: int, device: torch.device, with_loop: bool) -> dict:
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


def reward_pool_and_cache(n: int, m: int, device: torch.device) -> dict:
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


