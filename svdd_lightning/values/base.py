"""The ValueFunction contract: v(x_t, t) ~ E[r(x_0) | x_t], in reward units.

``forward(x_t, t) -> (B,)`` is the value. ``evaluate`` is what decoders call: it also returns
the denoiser output it computed on the way (posterior-mean values) so the decoder can reuse
the chosen candidate's denoiser output for its next proposal instead of recomputing it, and
it counts the calls it made.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from svdd_lightning.diffusion.base import Diffusion


@dataclass
class ValueOutput:
    values: Tensor  # (B,)
    denoised: Tensor | None  # diffusion.denoise(x_t, t) when computed, for reuse
    denoiser_calls: int
    value_calls: int
    reward_calls: int


class ValueFunction(nn.Module):
    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, diffusion: Diffusion, x_t: Tensor, t: int) -> ValueOutput:
        batch = x_t.shape[0]
        values = self(x_t, diffusion.as_time(t, batch))
        return ValueOutput(values=values, denoised=None, denoiser_calls=0, value_calls=batch, reward_calls=0)
