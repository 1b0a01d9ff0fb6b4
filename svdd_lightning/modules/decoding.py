"""Decoding through ``trainer.predict``: each batch is a tensor of global sample indices and
seeds one generator per index, so the same samples come out on 1 CPU or N GPUs. Each batch's calls are
measured around the decoder (svdd_lightning/calls.py) beside the calls it asked for."""

from __future__ import annotations

import warnings

import lightning as L
from torch import nn

from svdd_lightning import ops
from svdd_lightning.calls import measured
from svdd_lightning.decoders.base import Decoder
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.errors import ConfigError
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import StartPlan


def check_candidates_can_differ(diffusion: Diffusion, decoder: Decoder) -> None:
    """Refuse a decoder that chooses among M candidates of one state on a diffusion whose every step is
    deterministic (a flow model's ODE, stochasticity = 0): the M proposals would be one object, scored M times."""
    if not diffusion.draws_nothing:
        return
    m = decoder.settings().get("num_candidates", 1)
    if decoder.branches and m > 1:
        raise ConfigError(
            f"decoder {type(decoder).__name__} proposes num_candidates={m} next states per step, but the diffusion's "
            f"steps draw nothing (diffusion.stochasticity=0: the flow's ODE), so all {m} would be the same state, "
            f"scored {m} times for nothing. Set diffusion.stochasticity above 0 (1.0: the SDE with the ODE's "
            f"marginals) to give the search something to choose from, or use decoder=best_of_n or "
            f"decoder=pretrained, whose samples differ through their starting noise.")
    if "resampling" in decoder.option_names:
        # Not an error: SMC still reweights whole trajectories. But a resampled copy stays a copy to the end.
        warnings.warn(f"decoder {type(decoder).__name__} resamples particles, but the diffusion's steps draw nothing "
                      f"(diffusion.stochasticity=0), so resampled copies stay identical to the end; set "
                      f"diffusion.stochasticity above 0 for diverse survivors.", stacklevel=2)


class DecodingModule(L.LightningModule):
    def __init__(self, *, diffusion: Diffusion, decoder: Decoder, reward: Reward, value: nn.Module | None,
                 seed: int, init: StartPlan | None = None) -> None:
        super().__init__()
        check_candidates_can_differ(diffusion, decoder)
        # Registered as submodules so Lightning moves them to the device the decoder runs on.
        self.diffusion = diffusion.eval().requires_grad_(False)
        self.reward = reward.eval()
        self.value = value.eval() if value is not None else None
        self.decoder = decoder
        self.seed = seed
        self.init = init  # where each batch begins (inpainting seeds), None: at the prior

    def on_predict_start(self) -> None:
        bar = self.trainer.progress_bar_callback
        self.decoder.show_progress = bool(bar is not None and bar.is_enabled and self.trainer.is_global_zero)

    def predict_step(self, batch, batch_idx):
        indices = batch
        start = None if self.init is None else self.init.start(indices, seed=self.seed).to(self.device)
        out, made = measured(self.decoder, self.diffusion, len(indices), ops.make_generators(self.seed, indices), start)
        return {
            "index": indices.cpu(),
            # Data, not states: a latent model's samples leave as decoded images.
            "samples": self.diffusion.to_data(out.samples.detach()).cpu(),
            "rewards": out.rewards.detach().float().cpu(),
            "log_weights": out.log_weights.detach().cpu(),
            # Measured rows through the denoiser, value networks and reward, and what the decoder asked for.
            "calls_made": made,
            "calls_asked": out.info["asked"],
            "trace": out.info.get("trace", {}),
            # Refinement: each kept design's reward after every round (B, rounds + 1).
            **({"round_rewards": out.info["round_rewards"].detach().cpu()} if "round_rewards" in out.info else {}),
        }
