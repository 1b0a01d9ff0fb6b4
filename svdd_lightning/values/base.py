"""The ValueFunction contract: v(x_t, t) ~ E[r(x_0) | x_t], in reward units.

``forward(x_t, t) -> (B,)`` is the value. ``evaluate`` is what decoders call: it also returns
the denoiser output it computed on the way (posterior-mean values) so the decoder can reuse
the chosen candidate's denoiser output for its next proposal instead of recomputing it.
``asked_per_state`` is what scoring one state costs, for a decoder's ledger of asked calls
(svdd_lightning/calls.py); what is made is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.distinct import Distinct


@dataclass
class ValueOutput:
    values: Tensor  # (B,)
    denoised: Tensor | None  # diffusion.denoise(x_t, t) when computed, for reuse


class ValueFunction(nn.Module):
    # Whether forward is differentiable in x_t (DPS can follow it): learned values are, the posterior mean is not.
    gradient_in_state: bool = False
    # Whether forward runs a network of its own, whose rows calls.CallMeter counts as value calls (a learned
    # value; not the posterior mean, which is the denoiser and the reward).
    runs_a_network: bool = True

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def asked_per_state(self) -> dict[str, int]:
        """The calls scoring one state at t >= 1 asks for, per kind: one value-network row."""
        return {"value": 1}

    def evaluate(self, diffusion: Diffusion, x_t: Tensor, t: int) -> ValueOutput:
        values = self(x_t, diffusion.as_time(t, x_t.shape[0]))
        return ValueOutput(values=values, denoised=None)


def evaluate_in_chunks(value: ValueFunction, diffusion: Diffusion, x_t: Tensor, t: int,
                       max_batch: int | None) -> ValueOutput:
    """``value.evaluate`` on all of ``x_t`` at once, or in chunks of at most ``max_batch``
    objects when a cap is set (a bound on peak memory as B x M grows); same numbers either way."""
    if max_batch is None or x_t.shape[0] <= max_batch:
        return value.evaluate(diffusion, x_t, t)
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1 or null, got {max_batch}")
    return merge_outputs([value.evaluate(diffusion, chunk, t) for chunk in x_t.split(max_batch)])


def merge_outputs(parts: list[ValueOutput]) -> ValueOutput:
    """The ValueOutputs of consecutive chunks as one."""
    if len(parts) == 1:
        return parts[0]
    denoised = None if any(p.denoised is None for p in parts) else torch.cat([p.denoised for p in parts])
    return ValueOutput(values=torch.cat([p.values for p in parts]), denoised=denoised)


def score_states(value: ValueFunction, reward, diffusion: Diffusion, x_t: Tensor, t: int,
                 max_batch: int | None = None, distinct: bool = False) -> ValueOutput:
    """The soft value of states at step ``t``, as decoders must read it: at t = 0 the objects are
    clean and v_0 = r by definition, so the reward scores them (a learned value never saw t = 0:
    its rollouts store t = T..1); at t >= 1 the value, in chunks of at most ``max_batch``.

    ``distinct=True``: each distinct state is scored once (``svdd_lightning/distinct.py``) and the
    result, with the denoiser output it made, is indexed back to every copy."""
    if distinct:
        unique = Distinct.of(x_t)
        scored = score_states(value, reward, diffusion, unique.rows, t, max_batch)
        return replace(scored, values=unique.scatter(scored.values), denoised=unique.scatter(scored.denoised))
    if int(t) == 0:
        return ValueOutput(values=reward(x_t), denoised=None)
    return evaluate_in_chunks(value, diffusion, x_t, t, max_batch)
