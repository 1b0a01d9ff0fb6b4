"""The Decoder contract.

``decoder(diffusion, batch_size, generators, start=None) -> DecodeOutput``. Decoders hold the reward (and
value) they steer with, keep no state between calls, and write their loop out in full so the
algorithm can be read in one screen. A decoder declares the calls its algorithm asks for (its budget, in a
:class:`~svdd_lightning.calls.CallLedger`, ``info["asked"]``); the calls made are measured around it
(svdd_lightning/calls.py). A decode begins at the prior on the diffusion's whole grid, or at a
:class:`~svdd_lightning.starts.Start` (seeds to inpaint, designs to refine) given as the argument ``start``:
``begin`` and ``steps`` read either, so a decoder's loop is the same for both. """

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from svdd_lightning.calls import CallLedger
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.distinct import denoise_distinct
from svdd_lightning.ops import Generators
from svdd_lightning.starts import Start
from svdd_lightning.stopping import raise_if_requested


def stoppable(steps):
    """The steps, checking before each one for a stop signal (svdd_lightning/stopping.py): a stopped decode drops
    its batch in flight whole, so nothing half-decoded is ever written."""
    for t in steps:
        raise_if_requested()
        yield t


@dataclass
class DecodeOutput:
    samples: Tensor  # (B, *event)
    rewards: Tensor  # (B,)
    log_weights: Tensor  # (B,), zeros for unweighted decoders
    info: dict[str, Any] = field(default_factory=dict)


class Decoder(ABC):
    name: str = "decoder"
    # What the decoder steers with (set by constructors); the calls through them are measured (calls.CallMeter).
    reward: Any = None
    value: Any = None
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

    def denoise(self, diffusion: Diffusion, x: Tensor, t: int, calls: CallLedger,
                max_batch: int | None = None) -> Tensor:
        """``diffusion.denoise(x, t)``, once per distinct state when deduplicating; asked for every row."""
        calls.ask("denoiser", x.shape[0])
        if self.deduplicates(diffusion):
            return denoise_distinct(diffusion, x, t, max_batch)[0]
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
    def finish(samples: Tensor, rewards: Tensor, calls: CallLedger, trace: dict[str, list[float]] | None = None,
               **extra: Any) -> DecodeOutput:
        info: dict[str, Any] = {"asked": calls.as_dict(), "trace": trace or {}}
        info.update(extra)
        return DecodeOutput(samples=samples, rewards=rewards.detach(), log_weights=torch.zeros_like(rewards),
                            info=info)
