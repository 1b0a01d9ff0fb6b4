"""Peak decode memory against M, with and without a ``max_batch`` cap (DNA SVDD-PM): each point in a fresh
process on CPU (``benchmarks/speed.py`` runs it)."""

from __future__ import annotations

import multiprocessing
import resource

import torch

from benchmarks.timing import load
from svdd_lightning import ops
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.values.posterior_mean import PosteriorMeanValue


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


def peak_memory_against_m(n: int, ms: list[int], cap: int, device: torch.device) -> list[dict]:
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


