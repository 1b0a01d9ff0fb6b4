"""The Decoder contract.

``decoder(diffusion, batch_size, generators, start=None) -> DecodeOutput``. Decoders hold the reward (and
value) they steer with, keep no state between calls, and write their loop out in full so the
algorithm can be read in one screen. A decoder declares the calls its algorithm asks for (its budget, in a
:class:`~svdd_lightning.calls.CallLedger`, ``info["asked"]``); the calls made are measured around it
(svdd_lightning/calls.py). A decode begins at the prior on the diffusion's whole grid, or at a
:class:`~svdd_lightning.starts.Start` (seeds to inpaint, designs to refine) given as the argument ``start``:
``begin`` and ``steps`` read either, so a decoder's loop is the same for both. """

from __future__ import annotations

import inspect
import sys
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from svdd_lightning.annotations import conforms, describe
from svdd_lightning.calls import CallLedger
from svdd_lightning import ops
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
    # Draws several next states of one state per step (its num_candidates): pointless where steps draw nothing.
    branches: bool = False

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

    # What the decoder steers with, not options of it (keep_options leaves them to the constructor).
    STEERING = ("reward", "value")
    # The options kept by keep_options, in the constructor's order.
    option_names: tuple[str, ...] = ()

    def keep_options(self, arguments: Mapping[str, Any]) -> None:
        """Check each of the constructor's options against its declaration and keep it as an attribute of the same
        name, for ``settings()``. Called with ``locals()`` first thing in ``__init__``: the typed, keyword-only
        signature is the one declaration of a decoder's options (``num_candidates: AtLeastOne = 10``,
        ``replace: Literal["random", "lowest"]``), read here for the Python API and by svdd_lightning/options.py for a
        config, before anything is built. Checks across options stay in the constructor."""
        # The __init__ that called (a subclass calling super().__init__ passes the parent's locals, not its own).
        caller = sys._getframe(1).f_code
        init = next((c.__dict__["__init__"] for c in type(self).__mro__
                     if getattr(c.__dict__.get("__init__"), "__code__", None) is caller), type(self).__init__)
        hints = typing.get_type_hints(init, include_extras=True)
        names = [n for n in inspect.signature(init).parameters if n != "self" and n not in self.STEERING]
        for name in names:
            value = arguments[name]
            if name in hints and not conforms(value, hints[name]):
                raise ValueError(f"{name} must be {describe(hints[name])}, got {value!r}")
            setattr(self, name, value)
        self.option_names = tuple(dict.fromkeys((*self.option_names, *names)))  # a parent's first, then its own

    def settings(self) -> dict[str, Any]:
        """The decoder's options, for summaries and run configs: each kept option, the value's class, and
        num_candidates = 1 for a decoder that draws one candidate per step (the benchmark's budget column)."""
        out = {"num_candidates": 1} if "num_candidates" not in self.option_names else {}
        out.update({name: getattr(self, name) for name in self.option_names})
        if self.value is not None:
            out["value"] = type(self.value).__name__
        return out

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
    def check_generators(batch_size: int, generators: Generators) -> None:
        if len(generators) != batch_size:
            raise ValueError(f"need one generator per sample: batch_size={batch_size}, got {len(generators)}")

    @staticmethod
    def keep_candidates(candidates: Tensor, denoised: Tensor | None, kept: Tensor) -> tuple[Tensor, Tensor | None]:
        """The kept candidates of each sample (``kept``: (B,) one, or (B, A) several; ops.gather_candidates) and,
        when the value call ran the denoiser on every candidate (``denoised``: (B * C, ...), C per sample), the
        outputs of the kept ones, reused for the next proposal; else None."""
        batch_size, count = candidates.shape[:2]
        x = ops.gather_candidates(candidates, kept)
        if denoised is None:
            return x, None
        return x, ops.gather_candidates(denoised.view(batch_size, count, *denoised.shape[1:]), kept)

    @staticmethod
    def value_trace(chosen_values: list[Tensor]) -> dict[str, list[float]]:
        """The mean and spread over the batch of each step's chosen values (B,), for the trace plots."""
        per_step = torch.stack(chosen_values)  # (T, B)
        return {"value_mean": per_step.mean(1).tolist(), "value_std": per_step.std(1, correction=0).tolist()}

    @staticmethod
    def finish(samples: Tensor, rewards: Tensor, calls: CallLedger, trace: dict[str, list[float]] | None = None,
               **extra: Any) -> DecodeOutput:
        info: dict[str, Any] = {"asked": calls.as_dict(), "trace": trace or {}}
        info.update(extra)
        return DecodeOutput(samples=samples, rewards=rewards.detach(), log_weights=torch.zeros_like(rewards),
                            info=info)
