"""Masking schedules of absorbing-state (masked) diffusion.

A schedule gives alpha(u), the probability that a token is still unmasked at time fraction u = t / T in [0, 1]
(alpha(0) = 1, alpha(1) = 0, decreasing). Everything masked diffusion needs follows from it, by one formula
each (MDLM, Sahoo et al. 2024):

- the masking probability at step t: 1 - alpha(t / T);
- the reveal probability of a masked token from step t to s = t - 1:
  (alpha(s / T) - alpha(t / T)) / (1 - alpha(t / T));
- the weight of step t in the discrete-time ELBO, sum_t E[w_t sum_masked log p(x_0 | x_t)]: the same reveal
  probability (the chance that a masked token is decoded at exactly that step).

The log-linear schedule alpha(u) = 1 - u (MDLM's, and the reference SVDD code's) gives reveal probability 1 / t.
Tables are computed in float64 and cast once, so a grid whose t / T are exact in binary (T a power of two, as
the shipped T = 128) gives exactly 1 / t in float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class MaskSchedule:
    name = "schedule"

    def alpha(self, u: Tensor) -> Tensor:
        """P(token unmasked) at time fractions ``u`` in [0, 1] (float64)."""
        raise NotImplementedError

    def tables(self, num_steps: int) -> tuple[Tensor, Tensor]:
        """(mask probability at t = 0..T, reveal probability from t to t - 1 at t = 0..T; 0 at t = 0), float32."""
        u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        alpha = self.alpha(u)
        mask = 1.0 - alpha
        reveal = torch.zeros_like(alpha)
        reveal[1:] = (alpha[:-1] - alpha[1:]) / mask[1:]
        return mask.float(), reveal.float()


class LogLinearSchedule(MaskSchedule):
    """alpha(u) = 1 - u: a token is masked with probability t / T; reveal probability 1 / t."""

    name = "loglinear"

    def alpha(self, u: Tensor) -> Tensor:
        return 1.0 - u.double()


class CosineSchedule(MaskSchedule):
    """alpha(u) = cos(pi u / 2): fewer reveals early, more late (MaskGIT's cosine masking)."""

    name = "cosine"

    def alpha(self, u: Tensor) -> Tensor:
        return torch.cos(math.pi / 2 * u.double()).clamp(min=0.0)
