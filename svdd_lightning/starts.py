"""Where a decode begins, passed to the decoder as an argument (``decoder(diffusion, B, generators, start=...)``).

Without a start a decode begins at the prior, x_T, on the diffusion's full grid T, T-1, ..., 1. Inpainting
(svdd_lightning/inpainting.py) and refinement (decoders/refine.py) begin elsewhere: from given states at an
earlier step, with each sample tied to the seed it came from. A :class:`Start` carries that for one batch, so a
Diffusion holds its model and schedule and nothing about the batch in flight, and every decoder runs unchanged
from either beginning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Start:
    """The beginning of one batch's decode: sample b starts from ``states[b]`` at step ``first_step``."""

    states: Tensor  # (B, *event) the states at first_step (partially masked seeds, re-masked designs)
    first_step: int  # the t of the first reverse step (T for the prior)
    # (B,) the seed each sample starts from, so that population decoders (SMC, SVDD-R) exchange designs only
    # within a seed's; None: samples are independent (no seeds, or a single one).
    groups: Tensor | None = None
    # (B, *event) bool, the positions a refinement may re-mask (an inpainting decode's masked region); None: all.
    redesignable: Tensor | None = None

    def __post_init__(self) -> None:
        if self.first_step < 1:
            raise ValueError(f"a start's first_step must be >= 1 (one reverse step at least), got {self.first_step}")
        for name in ("groups", "redesignable"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != self.states.shape[0]:
                raise ValueError(f"a start's {name} must have one row per state ({self.states.shape[0]}), got "
                                 f"{value.shape[0]}")

    @property
    def batch_size(self) -> int:
        return int(self.states.shape[0])

    def timesteps(self) -> list[int]:
        """The reverse-time grid from this start: first_step, ..., 1."""
        return list(range(self.first_step, 0, -1))

    def repeated(self, copies: int) -> tuple[Tensor, Tensor | None]:
        """States and seed groups for ``copies`` members per sample (K particles, A beams, N chains), as rows
        b * copies + k: every member of sample b starts from sample b's state."""
        states = self.states.repeat_interleave(copies, dim=0)
        groups = None if self.groups is None else self.groups.repeat_interleave(copies, dim=0)
        return states, groups

    def redesignable_positions(self) -> Tensor:
        """Which positions of each state a refinement may re-mask."""
        if self.redesignable is not None:
            return self.redesignable
        return torch.ones_like(self.states, dtype=torch.bool)

    def restarted(self, states: Tensor, first_step: int) -> Start:
        """The same samples (seed groups, redesignable region) from other states at another step: a refinement
        round's start."""
        return replace(self, states=states, first_step=int(first_step))

    def to(self, device: torch.device | str) -> Start:
        move = (lambda t: None if t is None else t.to(device))
        return replace(self, states=self.states.to(device), groups=move(self.groups),
                       redesignable=move(self.redesignable))


@runtime_checkable
class StartPlan(Protocol):
    """What builds each batch's start from its global sample indices (inpainting.Inpainting), so that a sample's
    start depends only on (seed, index), like everything else about it."""

    def start(self, indices: Tensor, *, seed: int) -> Start: ...

    def timesteps(self) -> list[int]: ...  # the steps every start of the plan decodes

    def describe(self) -> dict: ...
