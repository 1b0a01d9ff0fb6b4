"""The Reward contract: a black-box (or differentiable) score of clean objects.

Two kinds of rewards exist:

- **Rewards over objects** (rewards/objects.py, ``takes_objects = True``): a function of the objects a
  user knows (``str`` sequences, SMILES, uint8 image arrays), e.g. a plain ``f(list[str]) ->
  list[float]``. The framework converts tensors through the run's domain, memoises, pools and floors
  invalid objects for them. The built-in CPU oracles (QED, SA, logP, MFE, JPEG size) are such rewards.
- **Tensor rewards** (this class): ``forward(x0) -> (B,)`` on x0's device. Differentiable rewards
  (``is_differentiable = True``: PSSM motifs, GC content, learned oracles) must be tensor rewards,
  since DPS backpropagates through them. What they receive:

  * while decoding and scoring: the domain's sample tensors, long token ids (B, L) for sequences and
    molecules, float images (B, C, H, W) in [-1, 1];
  * from DPS: for masked (token) models, *soft one-hots* (B, L, V), float per-position probabilities
    over the V sampleable tokens (rows summing to 1) through which gradients flow; for Gaussian models,
    the float posterior-mean image. A tensor reward over tokens should accept both (e.g. with
    ``svdd_lightning.networks.sequence.soft_one_hot``).

Rewards are always maximised (``higher_is_better`` is informational). Non-differentiable tensor rewards
run under ``torch.no_grad`` and must return a documented floor for invalid objects, never NaN.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class Reward(nn.Module):
    name: ClassVar[str] = "reward"
    units: ClassVar[str] = ""  # shown on plot axes, e.g. "kcal/mol"
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False

    def forward(self, x0: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reward holds between calls (a process pool); the run is over."""
