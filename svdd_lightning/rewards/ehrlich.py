"""The Ehrlich objective as a reward (svdd_lightning/domains/ehrlich.py): holo's closed-form value in [0, 1],
optimum 1.0. An infeasible sequence (a banned transition of the function's Markov process, where holo gives minus
infinity) and a row with a leftover mask score ``infeasible_value``: a documented floor below every feasible value,
never minus infinity (which would turn a softmax or an SMC weight into NaN). The domain counts infeasible samples
(``feasible_fraction`` in summary.json's naturalness)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from svdd_lightning.domains.ehrlich import ehrlich_values, holo_ehrlich
from svdd_lightning.rewards.base import Reward


class EhrlichReward(Reward):
    """holo's Ehrlich value of long tokens (B, L); ``infeasible_value`` where holo gives minus infinity."""

    name: ClassVar[str] = "ehrlich"
    units: ClassVar[str] = "fraction of motifs present, quantised (optimum 1)"
    is_differentiable: ClassVar[bool] = False

    def __init__(self, *, num_states: int | None, dim: int | None, num_motifs: int | None, motif_length: int | None,
                 quantization: int | None, random_seed: int | None, infeasible_value: float = -1.0) -> None:
        """The function's arguments come from the ``ehrlich`` preset (configs/ehrlich/); None (no preset: another
        domain) is refused with the fix."""
        super().__init__()
        if None in (num_states, dim, num_motifs, motif_length, random_seed):
            from svdd_lightning.errors import ConfigError

            raise ConfigError("reward=ehrlich scores sequences of an Ehrlich function, which only domain=ehrlich "
                              "defines: run it with domain=ehrlich (and ehrlich=hard or ehrlich=moderate).")
        if not infeasible_value < 0.0:
            raise ValueError(f"reward.infeasible_value={infeasible_value} must be below 0, the lowest feasible value, "
                             "so that infeasible sequences rank below every feasible one (e.g. -1.0)")
        self.function = holo_ehrlich(num_states=num_states, dim=dim, num_motifs=num_motifs, motif_length=motif_length,
                                     quantization=quantization, random_seed=random_seed)
        self.infeasible_value = float(infeasible_value)

    @torch.no_grad()
    def forward(self, x0: Tensor) -> Tensor:
        if x0.dtype.is_floating_point and x0.dim() == 3:  # soft one-hots (B, L, V): the most likely state
            x0 = x0.argmax(dim=-1)
        values = ehrlich_values(self.function, x0)
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, self.infeasible_value))
        return values.to(device=x0.device, dtype=torch.float32)
