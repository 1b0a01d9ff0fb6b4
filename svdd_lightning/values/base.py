"""The ValueFunction contract: v(x_t, t) ~ E[r(x_0) | x_t], in reward units.

``forward(x_t, t) -> (B,)`` is the value. ``evaluate`` is what decoders call: it also returns
the denoiser output it computed on the way (posterior-mean values) so the decoder can reuse
the chosen candidate's denoiser output for its next proposal instead of recomputing it, and
it counts the calls it made.
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
    denoiser_calls: int
    value_calls: int
    reward_calls: int
    # Value-network calls per object scored (a MultiValue's components): what one asked-for object costs.
    value_networks: int = 1


class ValueFunction(nn.Module):
    # Whether forward is differentiable in x_t (DPS can follow it): learned values are, the posterior mean is not.
    gradient_in_state: bool = False
    # Value-network calls one object costs (a MultiValue runs one network per component).
    networks_per_object: int = 1

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, diffusion: Diffusion, x_t: Tensor, t: int) -> ValueOutput:
        batch = x_t.shape[0]
        values = self(x_t, diffusion.as_time(t, batch))
        return ValueOutput(values=values, denoised=None, denoiser_calls=0,
                           value_calls=batch * self.networks_per_object, reward_calls=0,
                           value_networks=self.networks_per_object)


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
    return ValueOutput(values=torch.cat([p.values for p in parts]), denoised=denoised,
                       denoiser_calls=sum(p.denoiser_calls for p in parts),
                       value_calls=sum(p.value_calls for p in parts),
                       reward_calls=sum(p.reward_calls for p in parts), value_networks=parts[0].value_networks)


def score_states(value: ValueFunction, reward, diffusion: Diffusion, x_t: Tensor, t: int,
                 max_batch: int | None = None, distinct: bool = False) -> ValueOutput:
    """The soft value of states at step ``t``, as decoders must read it: at t = 0 the objects are
    clean and v_0 = r by definition, so the reward scores them (a learned value never saw t = 0:
    its rollouts store t = T..1); at t >= 1 the value, in chunks of at most ``max_batch``.

    ``distinct=True``: each distinct state is scored once (``svdd_lightning/distinct.py``) and the
    result, with the denoiser output it made, is indexed back to every copy; the counts are of the
    states really scored."""
    if distinct:
        unique = Distinct.of(x_t)
        scored = score_states(value, reward, diffusion, unique.rows, t, max_batch)
        return replace(scored, values=unique.scatter(scored.values), denoised=unique.scatter(scored.denoised))
    if int(t) == 0:
        return ValueOutput(values=reward(x_t), denoised=None, denoiser_calls=0, value_calls=0,
                           reward_calls=x_t.shape[0])
    return evaluate_in_chunks(value, diffusion, x_t, t, max_batch)
