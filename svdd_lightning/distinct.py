"""Evaluate each distinct object once, and scatter the result back to every copy.

Masked diffusion makes many identical objects: at a step from t to t - 1 a candidate reveals nothing with
probability about exp(-L / T) (0.69 for molecules, L = 48, T = 128), so most of SVDD's M candidates of a sample
equal x_t and each other; Best-of-N and SMC chains start identical (all masks) and SMC's resampling copies
particles. Decoders pass their network and reward evaluations through :class:`Distinct` (``score_states(...,
distinct=True)``, ``denoise_distinct``), which finds the distinct rows (``torch.unique`` over the flattened event),
evaluates those once, and indexes the results back.

Same numbers as evaluating every copy: on CPU, oneDNN computes a call's rows in blocks of ``ROW_BLOCK``, and a
row in a partial block (the last ``n % 16`` rows of a call of ``n``) is rounded differently (up to about 1e-6 on
the shipped models) from the same row in a whole block. So the token models' networks (``MaskedDiffusion`` and
``LearnedValue``) always run on inputs padded with copies of the last row to whole blocks (``in_whole_blocks``),
with or without deduplication: a row's output then does not depend on which other rows share its call (measured
bitwise on the shipped DNA, RNA and molecule networks for call sizes 1 to 69 and more; ``tests/test_distinct.py``
checks it on a small convolutional network), and deduplicated decoding gives the same samples as decoding every
copy, on any batch size. Padding rows stay inside the network (the reward never sees them) and are not counted as
calls. GPU kernels are chosen by call size too; whether whole blocks of 16 make them call-independent is not
measured here, so on a GPU the two agree up to float rounding.

Only states that can repeat are deduplicated (``Diffusion.states_can_repeat``: token states); Gaussian states
never coincide, and their decoders run exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

ROW_BLOCK = 16


def distinct_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct rows of ``x`` (U, *event) and, for each row of ``x``, the index of its distinct row (N,)."""
    unique, inverse = torch.unique(x.flatten(1), dim=0, return_inverse=True)
    return unique.view(-1, *x.shape[1:]), inverse


def in_whole_blocks(network: Callable[..., Tensor], *inputs: Tensor, block: int = ROW_BLOCK) -> Tensor:
    """``network(*inputs)`` with the inputs (all with the same batch size) padded by copies of their last row to
    a multiple of ``block`` rows, and the output cut back to the real rows."""
    n = inputs[0].shape[0]
    pad = -n % block
    if pad == 0 or n == 0:
        return network(*inputs)
    padded = [torch.cat([x, x[-1:].expand(pad, *x.shape[1:])]) for x in inputs]
    return network(*padded)[:n]


def in_chunks(fn: Callable[[Tensor], Tensor], x: Tensor, max_batch: int | None) -> Tensor:
    """``fn`` over ``x`` in chunks of at most ``max_batch`` rows (all at once when None)."""
    if max_batch is None or x.shape[0] <= max_batch:
        return fn(x)
    return torch.cat([fn(chunk) for chunk in x.split(max_batch)])


@dataclass
class Distinct:
    """The distinct rows of a batch of objects and the map back; ``objects`` rows asked, ``count`` evaluated."""

    rows: Tensor
    inverse: Tensor

    @classmethod
    def of(cls, x: Tensor) -> Distinct:
        rows, inverse = distinct_rows(x)
        return cls(rows=rows, inverse=inverse)

    @property
    def objects(self) -> int:
        return int(self.inverse.shape[0])

    @property
    def count(self) -> int:
        return int(self.rows.shape[0])

    def scatter(self, values: Tensor | None) -> Tensor | None:
        """Per-distinct-row results (U, ...) -> per-row results (N, ...)."""
        return None if values is None else values[self.inverse]


def denoise_distinct(diffusion, x: Tensor, t: int, max_batch: int | None = None) -> tuple[Tensor, int]:
    """``diffusion.denoise(x, t)`` evaluated once per distinct row of ``x``; returns it and the rows evaluated."""
    if isinstance(t, Tensor) and t.dim() > 0:  # rows are reordered: a per-row time would no longer match them
        raise ValueError("denoise_distinct takes one time step for the whole batch (an int), not a per-row tensor")
    distinct = Distinct.of(x)
    out = in_chunks(lambda rows: diffusion.denoise(rows, t), distinct.rows, max_batch)
    return distinct.scatter(out), distinct.count
