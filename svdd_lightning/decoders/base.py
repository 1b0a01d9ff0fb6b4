"""The Decoder contract.

``decoder(diffusion, batch_size, generators, start=None) -> DecodeOutput``. Decoders hold the reward (and
value) they steer with, keep no state between calls, and write their loop out in full so the
algorithm can be read in one screen. A decode begins at the prior on the diffusion's whole grid, or at a
:class:`~svdd_lightning.starts.Start` (seeds to inpaint, designs to refine) given as the argument ``start``:
``begin`` and ``steps`` read either, so a decoder's loop is the same for both. Every decoder counts the objects it sends through the
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
from svdd_lightning.distinct import denoise_distinct
from svdd_lightning.ops import Generators
from svdd_lightning.starts import Start
from svdd_lightning.stopping import raise_if_requested


KINDS = ("denoiser", "value", "reward")


def stoppable(steps):
    """The steps, checking before each one for a stop signal (svdd_lightning/stopping.py): a stopped decode drops
    its batch in flight whole, so nothing half-decoded is ever written."""
    for t in steps:
        raise_if_requested()
        yield t


@dataclass
class CallCounter:
    """Objects really sent through the denoiser, the value and the reward, and (``saved``) the copies that
    deduplication (``svdd_lightning/distinct.py``) did not send: the algorithm asked for both."""

    denoiser: int = 0
    value: int = 0
    reward: int = 0
    saved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def as_dict(self) -> dict[str, int]:
        return {"denoiser": self.denoiser, "value": self.value, "reward": self.reward}

    def requested(self) -> dict[str, int]:
        """What the algorithm asked for: the calls it would make without deduplication."""
        return {kind: getattr(self, kind) + self.saved[kind] for kind in KINDS}

    def add(self, scored, asked: int) -> None:
        """Count a ValueOutput made for ``asked`` objects (each kind it called was asked for all of them, the
        value once per value network: ``value_networks``)."""
        for kind in KINDS:
            made = getattr(scored, f"{kind}_calls")
            setattr(self, kind, getattr(self, kind) + made)
            per_object = getattr(scored, "value_networks", 1) if kind == "value" else 1
            self.saved[kind] += asked * per_object - made if made else 0

    def add_denoiser(self, made: int, asked: int) -> None:
        self.denoiser += made
        self.saved["denoiser"] += asked - made

    def add_info(self, info: dict[str, Any]) -> None:
        """Add another decode's counts (its ``DecodeOutput.info``)."""
        requested = info.get("nfe_requested", info["nfe"])
        for kind in KINDS:
            setattr(self, kind, getattr(self, kind) + info["nfe"][kind])
            self.saved[kind] += requested[kind] - info["nfe"][kind]


@dataclass
class DecodeOutput:
    samples: Tensor  # (B, *event)
    rewards: Tensor  # (B,)
    log_weights: Tensor  # (B,), zeros for unweighted decoders
    info: dict[str, Any] = field(default_factory=dict)


class Decoder(ABC):
    name: str = "decoder"
    # Evaluate each distinct object of a call once (svdd_lightning/distinct.py); constructors take ``dedup``.
    dedup: bool = True
    # Set by the decoding module on rank zero when the trainer shows progress bars.
    show_progress: bool = False

    def steps(self, diffusion: Diffusion, start: Start | None = None):
        """The reverse-time grid (the diffusion's, or from the start's first step), with a per-step progress bar
        when ``show_progress`` is set."""
        steps = diffusion.timesteps() if start is None else start.timesteps()
        if self.show_progress:
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc=f"{self.name}: denoising steps", leave=False, dynamic_ncols=True)
        return stoppable(steps)

    @abstractmethod
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        """Draw ``batch_size`` samples; ``generators`` holds one per sample (ops.make_generators); ``start``: where
        they begin (None: at the prior)."""

    @staticmethod
    def begin(diffusion: Diffusion, generators: Generators, start: Start | None = None,
              copies: int = 1) -> tuple[Tensor, Tensor | None]:
        """The states at the first step of ``copies`` members per sample (particles, beams, chains; rows
        b * copies + k, ``generators`` one per member) and which seed each member starts from (None: members are
        independent). From the prior, or the start's states."""
        if start is None:
            return diffusion.prior(len(generators), generators), None
        if start.batch_size * copies != len(generators):
            raise ValueError(f"the start holds {start.batch_size} states for {len(generators) // copies} samples; "
                             f"give one state per sample")
        return start.repeated(copies)

    @staticmethod
    def first_step(diffusion: Diffusion, start: Start | None = None) -> int:
        """The t of the first reverse step: T, or the start's."""
        return diffusion.timesteps()[0] if start is None else start.first_step

    def settings(self) -> dict[str, Any]:
        """The decoder's options, for summaries and run configs."""
        return {}

    def deduplicates(self, diffusion: Diffusion) -> bool:
        """Whether this decode evaluates each distinct state once: asked for, and states that can repeat."""
        return self.dedup and diffusion.states_can_repeat

    def denoise(self, diffusion: Diffusion, x: Tensor, t: int, calls: CallCounter,
                max_batch: int | None = None) -> Tensor:
        """``diffusion.denoise(x, t)``, once per distinct state when deduplicating, counted."""
        if self.deduplicates(diffusion):
            denoised, made = denoise_distinct(diffusion, x, t, max_batch)
            calls.add_denoiser(made, asked=x.shape[0])
            return denoised
        calls.denoiser += x.shape[0]
        return diffusion.denoise(x, t)

    @staticmethod
    def check_max_batch(max_batch: int | None) -> None:
        """A cap on objects per network call: a positive count, or None for no cap."""
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1 or null (no cap), got {max_batch}")

    @staticmethod
    def check_generators(batch_size: int, generators: Generators) -> None:
        if len(generators) != batch_size:
            raise ValueError(f"need one generator per sample: batch_size={batch_size}, got {len(generators)}")

    @staticmethod
    def finish(samples: Tensor, rewards: Tensor, calls: CallCounter, trace: dict[str, list[float]] | None = None,
               **extra: Any) -> DecodeOutput:
        info: dict[str, Any] = {"nfe": calls.as_dict(), "nfe_requested": calls.requested(), "trace": trace or {}}
        info.update(extra)
        return DecodeOutput(samples=samples, rewards=rewards.detach(), log_weights=torch.zeros_like(rewards),
                            info=info)
