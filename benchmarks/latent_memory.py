"""Peak memory and time per step of SVDD-PM on a latent text-to-image model, against M.

    python benchmarks/latent_memory.py [--output benchmarks/latent_memory.json] [--size 128]

The model is the tiny Stable-Diffusion-layout pipeline of the tests (random weights, saved and loaded back from
disk; ``tests/tiny_pipelines.py``) at ``--size`` pixels (latents 4 x size/2 x size/2), one prompt, guidance 7.5.
For each M, a fresh process (spawn) decodes 2 samples in 3 DDIM steps with every UNet and VAE call uncapped
and with ``max_batch=4`` (decoder.max_batch), and reports the growth of resident memory over the decode (freed
memory is kept, so the growth is the decode's peak) and the seconds per step per sample. Each SVDD-PM step
costs, per sample, M UNet calls (2M rows with classifier-free guidance), M VAE decodes and M reward calls;
pre-trained sampling (M = 1 without the value) costs one UNet call and no VAE decode until the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLES = 2
STEPS = 3
CAP = 4


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def _child(conn, folder: str, size: int, m: int, cap: int | None) -> None:
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(1)
    from svdd_lightning import ops
    from svdd_lightning.decoders.svdd import SVDD
    from svdd_lightning.diffusion.latent import load_stable_diffusion
    from svdd_lightning.domains.images import ImageDomain
    from svdd_lightning.rewards.build import as_reward
    from svdd_lightning.rewards.image import CompressibilityReward
    from svdd_lightning.rewards.latent import DecodedReward
    from svdd_lightning.values.posterior_mean import PosteriorMeanValue

    diffusion = load_stable_diffusion(path=folder, prompt="a red square", num_inference_steps=STEPS, height=size,
                                      width=size, max_batch=cap).eval().requires_grad_(False)
    reward = DecodedReward(reward=as_reward(CompressibilityReward(workers=0), domain=ImageDomain()),
                           diffusion=diffusion)
    decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=m,
                   max_batch=cap)
    base = _resident_mb()
    start = time.perf_counter()
    with torch.no_grad():
        decoder(diffusion, SAMPLES, ops.make_generators(0, range(SAMPLES)))
    seconds = time.perf_counter() - start
    conn.send({"peak_growth_mb": round(_resident_mb() - base, 1),
               "seconds_per_step_per_sample": round(seconds / STEPS / SAMPLES, 4)})
    conn.close()


def measure(folder: Path, size: int, m: int, cap: int | None) -> dict:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, str(folder), size, m, cap))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "latent_memory.json"))
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (latents: size / 2)")
    parser.add_argument("--ms", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    args = parser.parse_args(argv)
    from tests.tiny_pipelines import tiny_stable_diffusion

    folder = tiny_stable_diffusion(Path(tempfile.mkdtemp()) / "tiny-sd")
    rows = []
    for m in args.ms:
        row = {"num_candidates": m, "uncapped": measure(folder, args.size, m, None),
               f"max_batch={CAP}": measure(folder, args.size, m, CAP)}
        rows.append(row)
        print(f"M={m:3d}: uncapped {row['uncapped']['peak_growth_mb']:7.1f} MB "
              f"{row['uncapped']['seconds_per_step_per_sample']:.3f} s/step/sample; max_batch={CAP} "
              f"{row[f'max_batch={CAP}']['peak_growth_mb']:7.1f} MB "
              f"{row[f'max_batch={CAP}']['seconds_per_step_per_sample']:.3f} s/step/sample", flush=True)
    report = {"machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
              "model": f"tiny SD pipeline (tests/tiny_pipelines.py), {args.size}x{args.size} images, latents "
                       f"4x{args.size // 2}x{args.size // 2}, guidance 7.5",
              "samples": SAMPLES, "steps": STEPS, "rows": rows}
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
