"""Tiny seeded models shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.networks.sequence import SequenceDenoiser, SequenceRegressor
from svdd_lightning.rewards.dna import GCReward
from svdd_lightning.values.learned import LearnedValue


ROOT = Path(__file__).resolve().parent.parent
# Intra-op threads of the tests' torch: 1 unless OMP_NUM_THREADS says otherwise (make test-portable runs the
# rounding-sensitive tests under 1 and 2). Tiny models gain nothing from threads, and on a busy 2-core machine
# OpenMP barriers make two threads far slower than one.
TEST_THREADS = int(os.environ.get("OMP_NUM_THREADS") or 1)
# Overrides that make the DNA domain tiny for end-to-end runs of train.py / decode.py.
TINY = [
    "domain.seq_len=24", "steps=4",
    "diffusion.network.channels=8", "diffusion.network.num_layers=2",
    "value_network.channels=8", "value_network.num_layers=2",
    "trainer.enable_progress_bar=false",
]


def run(script: str, *args: str, tmp: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run an entry point as a user would, with W&B kept out of $HOME and one thread for tiny models."""
    env = {**os.environ, "WANDB_DIR": str(tmp), "WANDB_CACHE_DIR": str(tmp / "wandb-cache"),
           "WANDB_CONFIG_DIR": str(tmp / "wandb-config"), "WANDB_DATA_DIR": str(tmp / "wandb-data"),
           "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_MODE", None)
    env.pop("WANDB_API_KEY", None)
    # An in-process W&B run of this pytest process leaves its service's address here; a child that found it would
    # share that service and exit without waiting for it to write the child's run file (a user's command owns one).
    env.pop("WANDB_SERVICE", None)
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def tiny_masked(seq_len: int = 12, num_steps: int = 6, seed: int = 0) -> MaskedDiffusion:
    torch.manual_seed(seed)
    net = SequenceDenoiser(vocab_size=4, channels=8, num_layers=2, time_dim=8)
    return MaskedDiffusion(network=net, vocab_size=4, seq_len=seq_len, num_steps=num_steps).eval()


def tiny_value(num_steps: int = 6, seed: int = 0) -> LearnedValue:
    torch.manual_seed(seed)
    return LearnedValue(network=SequenceRegressor(vocab_size=4, channels=8, num_layers=2, time_dim=8),
                        num_steps=num_steps).eval()


def gc_reward() -> GCReward:
    return GCReward()


def on_domain(reward, domain):
    """A built-in reward over objects as the Reward module a decode run makes of it (tensors in, scores out)."""
    from svdd_lightning.rewards.build import as_reward

    return as_reward(reward, domain=domain)


def rna_domain():
    from svdd_lightning.domains.nucleotides import RNA, NucleotideDomain

    return NucleotideDomain(alphabet=RNA)


def molecule_domain(vocab=None):
    from svdd_lightning.domains.molecules import MoleculeDomain

    return MoleculeDomain(vocab=vocab)


def image_domain():
    from svdd_lightning.domains.images import ImageDomain

    return ImageDomain()


def ddpm_alphas_cumprod(beta_schedule: str = "cosine", train_steps: int = 50) -> list[float]:
    """A diffusers DDPMScheduler's abar table for small test models: ``cosine`` is diffusers'
    squaredcos_cap_v2 (Nichol & Dhariwal, betas capped at 0.999); ``linear`` spans 1e-4..0.02 rescaled by
    1000 / K as improved DDPM does, so that a short grid still ends near pure noise."""
    from diffusers import DDPMScheduler

    if beta_schedule == "cosine":
        scheduler = DDPMScheduler(num_train_timesteps=train_steps, beta_schedule="squaredcos_cap_v2")
    else:
        scale = 1000.0 / train_steps
        scheduler = DDPMScheduler(num_train_timesteps=train_steps, beta_schedule=beta_schedule,
                                  beta_start=1e-4 * scale, beta_end=0.02 * scale)
    return scheduler.alphas_cumprod.tolist()


def tiny_unet_denoiser(channels: int = 1, seed: int = 0):
    """A tiny diffusers UNet2DModel (8 x 8 images, random weights) as a network of GaussianDiffusion
    (timestep_input="index")."""
    import torch
    from diffusers import UNet2DModel

    from svdd_lightning.diffusion.gaussian import DiffusersDenoiser

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=8, in_channels=channels, out_channels=channels, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    return DiffusersDenoiser(unet=unet)


def counted(decoder, diffusion, batch_size, generators, start=None):
    """``decoder(diffusion, batch_size, generators, start)`` with its calls measured (svdd_lightning/calls.py), as
    the decoding module runs it: ``info["made"]`` beside the decoder's own ``info["asked"]``."""
    from svdd_lightning.calls import measured

    out, made = measured(decoder, diffusion, batch_size, generators, start)
    out.info["made"] = made
    return out
