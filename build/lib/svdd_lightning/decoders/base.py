"""The Decoder contract.

``decoder(diffusion, batch_size, generators) -> DecodeOutput``. Decoders hold the reward (and
value) they steer with, keep no state between calls, and write their loop out in full so the
algorithm can be read in one screen. Every decoder counts the objects it sends through the
denoiser, the value and the reward, summed over the batch, into ``info`` so that methods are
compared at honest compute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators


@dataclass
class CallCounter:
    denoiser: int = 0
    value: int = 0
    reward: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"denoiser": self.denoiser, "value": self.value, "reward": self.reward}


@dataclass
class DecodeOutput:
    samples: Tensor  # (B, *event)
    rewards: Tensor  # (B,)
    log_weights: Tensor  # (B,), zeros for unweighted decoders
    info: dict[str, Any] = field(default_factory=dict)


class Decoder(ABC):
    name: str = "decoder"
    # Set by the decoding module on rank zero when the trainer shows progress bars.
    show_progress: bool = False

    def steps(self, diffusion: Diffusion):
        """The reverse-time grid, with a per-step progress bar when ``show_progress`` is set."""
        steps = diffusion.timesteps()
        if not self.show_progress:
            return steps
        from tqdm.auto import tqdm

        return tqdm(steps, desc=f"{self.name}: denoising steps", leave=False, dynamic_ncols=True)

    @abstractmethod
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators) -> DecodeOutput:
        """Draw ``batch_size`` samples; ``generators`` holds one per sample (ops.make_generators)."""

    def settings(self) -> dict[str, Any]:
        """The decoder's options, for summaries and run configs."""
        return {}

    @staticmethod
    def check_generators(batch_size: int, generators: Generators) -> None:
        if len(generators) != batch_size:
            raise ValueError(f"need one generator per sample: batch_size={batch_size}, got {len(generators)}")

    @staticmethod
    def finish(samples: Tensor, rewards: Tensor, calls: CallCounter, trace: dict[str, list[float]] | None = None,
               **extra: Any) -> DecodeOutput:
        info: dict[str, Any] = {"nfe": calls.as_dict(), "trace": trace or {}}
        info.update(extra)
        return DecodeOutput(samples=samples, rewards=rewards.detach(), log_weights=torch.zeros_like(rewards),
                            info=info)
