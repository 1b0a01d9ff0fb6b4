"""Refinement (as in reward-guided iterative refinement, RERD, with the chosen decoder as the inner step):
decode, then ``rounds`` times re-mask a fraction of each current design, decode it back with the same decoder
from the matching step, and keep whichever of the old and the new design has the higher reward.

Re-masked positions are drawn from each sample's own generator (so a design depends only on (seed, index)), and
within the region an inpainting decode redesigns (the rest stays the seed's). The reward of every round's kept
designs is returned per sample (``info["round_rewards"]``, (B, rounds + 1)), so summary.json reports the median
per round; calls of every round are counted.
"""

from __future__ import annotations

import torch

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.ops import Generators
from svdd_lightning.starts import Start


class Refinement(Decoder):
    def __init__(self, *, decoder: Decoder, rounds: int, fraction: float = 0.1) -> None:
        if rounds < 1:
            raise ValueError(f"refine_rounds must be >= 1 for a refinement (0 = no refinement), got {rounds}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"refine_fraction must be in (0, 1], the share of positions re-masked per round, got "
                             f"{fraction}")
        self.decoder = decoder
        self.rounds = int(rounds)
        self.fraction = float(fraction)
        self.name = decoder.name
        self.reward = decoder.reward
        self.value = decoder.value

    @property
    def show_progress(self) -> bool:  # the inner decoder draws the progress bars
        return self.decoder.show_progress

    @show_progress.setter
    def show_progress(self, value: bool) -> None:
        self.decoder.show_progress = value

    def settings(self) -> dict:
        return {**self.decoder.settings(), "refine_rounds": self.rounds, "refine_fraction": self.fraction}

    def remask(self, diffusion: MaskedDiffusion, x: torch.Tensor, region: torch.Tensor,
               generators: Generators) -> tuple[torch.Tensor, int]:
        """The designs with a fraction of each one's redesignable positions (``region``) masked, and that count."""
        length = x.shape[1]
        sizes = region.sum(dim=1)
        count = max(1, int(round(self.fraction * int(sizes.min()))))
        u = ops.rand(generators, (length,), x.device).masked_fill(~region, float("inf"))
        chosen = u.argsort(dim=1)[:, :count]
        masked = x.clone()
        masked.scatter_(1, chosen, diffusion.mask_index)
        return masked, count

    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        if not isinstance(diffusion, MaskedDiffusion):
            raise ValueError("refinement re-masks tokens: it needs a masked (token) diffusion")
        out = self.decoder(diffusion, batch_size, generators, start)
        calls = CallLedger()  # the first decode's and every round's calls
        calls.add(out.info["asked"])
        x, rewards = out.samples, out.rewards
        # Later rounds keep the samples' seed groups and redesign only within the region the start left open.
        first = start if start is not None else Start(states=x, first_step=diffusion.num_steps)
        region = first.redesignable_positions()
        round_rewards = [rewards]
        for _ in range(self.rounds):
            starts, count = self.remask(diffusion, x, region, generators)
            t0 = diffusion.step_for_fraction(count / x.shape[1])
            new = self.decoder(diffusion, batch_size, generators, first.restarted(starts, t0))
            calls.add(new.info["asked"])
            better = new.rewards > rewards
            x = torch.where(better.view(-1, 1), new.samples, x)
            rewards = torch.where(better, new.rewards, rewards)
            round_rewards.append(rewards)
        return self.finish(x, rewards, calls, out.info.get("trace", {}),
                           round_rewards=torch.stack(round_rewards, dim=1).float())


def with_refinement(decoder: Decoder, *, diffusion: Diffusion, rounds: int, fraction: float) -> Decoder:
    """``decoder`` itself (rounds = 0) or wrapped in a Refinement; refinement of a non-token model is a
    ConfigError naming the option (decode.py and the Python API build decoders through this)."""
    if not rounds:
        return decoder
    if not isinstance(diffusion, MaskedDiffusion):
        from svdd_lightning.errors import ConfigError

        raise ConfigError(f"decoder.refine_rounds={rounds}: refinement re-masks tokens, and this is not a masked "
                          f"(token) model; use refine_rounds=0.")
    return Refinement(decoder=decoder, rounds=rounds, fraction=fraction)
