"""Value-guided iterative distillation (after VIDD, Su, Li, Uehara et al., arXiv 2507.00445): SVDD's soft-optimal
policy distilled into the diffusion model, so that plain sampling of the tuned model pays the pre-trained cost.

Each round (``distill.rounds``; ``distill.steps_per_round`` optimiser steps each):

1. **roll-in**: ``samples_per_round`` trajectories of the *current* model; their states at ``states_per_trajectory``
   steps t (drawn per round, shared by the round's trajectories so that each step is one batched call) go into a
   replay buffer of at most ``replay_size`` states, earlier rounds' included (off-policy). The trajectories' ends
   are the current model's plain samples: their rewards and their log-likelihood under the *original* model are
   the round's log.
2. **roll-out (the teacher)**: at each state, M = ``num_candidates`` draws of x_{t-1} from the frozen pre-trained
   model, scored by the posterior-mean value r(x0_hat) of the pre-trained model, and weighted by softmax(v / alpha):
   SVDD's soft-optimal policy p_pre(x_{t-1} | x_t) exp(v(x_{t-1}) / alpha), self-normalised over the M draws
   (alpha = 0: the best draw, SVDD-PM's choice).
3. **update**: the forward KL from the teacher's transition to the model's. For masked diffusion the transition's
   log-probability is, up to terms free of the model, the sum over the tokens it reveals of log p_theta(token | x_t),
   so the loss is -sum_m w_m sum_{i revealed by m} log p_theta(x^m_i | x_t), plus ``kl_weight`` times the KL from the
   model's transition to the frozen pre-trained one (r_t sum_masked KL(p_theta(. | x_t)_i || p_pre(. | x_t)_i), r_t
   the reveal probability), which holds the model near the original. (Denser labels, each draw's argmax estimate
   x0_hat at every masked position, were tried on DNA and collapsed the model: argmax labels sharpen it round by
   round, to low-complexity sequences of log-likelihood -135 against -265 and rewards near 2.)

The calls of training are counted (roll-in: the current model; teacher: the pre-trained model and the reward), so
what distillation paid can be set against what SVDD-PM spends at every decode.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from svdd_lightning import ops
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.metrics import elbo_log_likelihood
from svdd_lightning.modules.metadata import CheckpointMetadataMixin
from svdd_lightning.stopping import raise_if_requested
from svdd_lightning.values.base import score_states
from svdd_lightning.values.posterior_mean import PosteriorMeanValue


class DistillModule(CheckpointMetadataMixin):
    checkpoint_kind = "diffusion"  # what it writes is a diffusion model: every decoder loads it

    def __init__(self, *, diffusion: MaskedDiffusion, reward: Any, domain: str, seed: int, rounds: int,
                 steps_per_round: int, samples_per_round: int, states_per_trajectory: int, num_candidates: int,
                 alpha: float, batch_size: int, replay_size: int, kl_weight: float, lr: float,
                 pretrained_metadata: dict[str, Any] | None = None) -> None:
        """``diffusion``: the pre-trained model, tuned in place (a frozen copy is kept as teacher and anchor).
        ``pretrained_metadata``: the pre-trained checkpoint's record (vocabulary, model description), carried
        into the distilled checkpoint so that the same checks apply when it is decoded."""
        super().__init__()
        if not isinstance(diffusion, MaskedDiffusion):
            raise ValueError(f"stage=distill runs on masked (token) diffusion models; got {type(diffusion).__name__}. "
                             f"Gaussian models (images) are not supported yet.")
        self.diffusion = diffusion
        # Neither is a submodule: the checkpoint holds the tuned model's weights only.
        self._frozen = [copy.deepcopy(diffusion).eval().requires_grad_(False)]
        self._reward = [reward]
        self.domain = domain
        self.seed = seed
        self.rounds = rounds
        self.steps_per_round = steps_per_round
        self.samples_per_round = samples_per_round
        self.states_per_trajectory = states_per_trajectory
        self.num_candidates = num_candidates
        self.alpha = alpha
        self.batch_size = batch_size
        self.replay_size = replay_size
        self.kl_weight = kl_weight
        self.lr = lr
        self.pretrained_metadata = dict(pretrained_metadata or {})
        self.replay: dict[str, Tensor] = {}
        self.calls = {"denoiser_current": 0, "denoiser_pretrained": 0, "reward": 0}
        self.history: list[dict[str, float]] = []

    @property
    def pretrained(self) -> MaskedDiffusion:
        return self._frozen[0]

    @property
    def reward(self) -> Any:
        return self._reward[0]

    # -- checkpoints -------------------------------------------------------------------------------------------- #

    def checkpoint_metadata(self) -> dict[str, Any]:
        record = {**self.pretrained_metadata, **super().checkpoint_metadata()}
        record["distilled"] = {"rounds_done": len(self.history), "alpha": self.alpha, "kl_weight": self.kl_weight,
                               "num_candidates": self.num_candidates, "calls": dict(self.calls)}
        return record

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # What a resumed run needs beyond the weights: the replay buffer, the calls spent and the rounds' log.
        checkpoint["distill_state"] = {"replay": self.replay, "calls": self.calls, "history": self.history}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("distill_state") or {}
        self.replay = state.get("replay", {})
        self.calls = state.get("calls", self.calls)
        self.history = state.get("history", [])

    def on_fit_start(self) -> None:
        self.pretrained.to(self.device)

    # -- one round's data ------------------------------------------------------------------------------------- #

    @torch.no_grad()
    def roll_in(self, round_index: int) -> tuple[list[tuple[int, Tensor]], Tensor]:
        """Trajectories of the current model: their states at the round's steps, and their clean ends."""
        model = self.diffusion
        n, T = self.samples_per_round, model.num_steps
        indices = torch.arange(round_index * n, (round_index + 1) * n)
        gens = ops.make_generators(self.seed + 1, indices)
        # The round's steps: distinct t in 2..T (t = 1 is the argmax, which draws nothing to learn).
        chooser = torch.Generator().manual_seed(self.seed * 100_003 + round_index)
        count = min(self.states_per_trajectory, max(T - 1, 0))
        picked = set((torch.randperm(T - 1, generator=chooser)[:count] + 2).tolist())
        x = model.prior(n, gens)
        states = []
        for t in model.timesteps():
            raise_if_requested()
            if t in picked:
                states.append((t, x.clone()))
            x = model.step(x, t, gens).prev_sample
        self.calls["denoiser_current"] += n * T
        return states, x

    @torch.no_grad()
    def teacher(self, x_t: Tensor, t: int, round_index: int) -> tuple[Tensor, Tensor]:
        """M pre-trained draws of x_{t-1} per state and their weights softmax(v / alpha) (one-hot at alpha = 0)."""
        model, m = self.pretrained, self.num_candidates
        n = x_t.shape[0]
        gens = ops.make_generators(self.seed + 2 + t, torch.arange(round_index * n, (round_index + 1) * n))
        denoised = model.denoise(x_t, t)
        candidates = model.propose(x_t, t, m, gens, denoised=denoised)  # (n, M, L)
        value = PosteriorMeanValue(reward=self.reward, diffusion=model)
        flat = candidates.flatten(0, 1)
        scored = score_states(value, self.reward, model, flat, t - 1, distinct=True)
        values = scored.values.double().view(n, m)
        self.calls["denoiser_pretrained"] += n * (1 + m)
        self.calls["reward"] += n * m
        if self.alpha == 0:
            weights = F.one_hot(values.argmax(1), m).double()
        else:
            weights = torch.softmax(values / self.alpha, dim=1)
        return candidates, weights.float()

    def run_round(self, round_index: int) -> None:
        was_training = self.diffusion.training
        self.diffusion.eval()
        states, ends = self.roll_in(round_index)
        rewards = self.reward(ends).float()
        self.calls["reward"] += ends.shape[0]
        natural = elbo_log_likelihood(self.pretrained.to_data(ends), diffusion=self.pretrained, seed=self.seed + 2)
        new = {"x_t": [], "t": [], "targets": [], "weights": []}
        for t, x_t in states:
            targets, weights = self.teacher(x_t, t, round_index)
            new["x_t"].append(x_t)
            new["t"].append(torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device))
            new["targets"].append(targets)
            new["weights"].append(weights)
        self.diffusion.train(was_training)
        for key, parts in new.items():
            fresh = torch.cat(parts)
            fresh = compact(fresh) if key in ("x_t", "targets") else fresh
            kept = torch.cat([self.replay[key], fresh]) if key in self.replay else fresh
            self.replay[key] = kept[-self.replay_size:]  # first in, first out
        record = {"round": round_index, "reward_median": float(rewards.median()),
                  "reward_mean": float(rewards.mean()),
                  "log_likelihood_original": natural["log_likelihood"],
                  "replay_states": int(self.replay["t"].shape[0]),
                  "calls_total": int(sum(self.calls.values())), **{f"calls_{k}": v for k, v in self.calls.items()}}
        self.history.append(record)
        if self._trainer is not None:  # a round run by hand (tests) has no trainer to log to
            self.log_dict({f"round/{k}": float(v) for k, v in record.items()}, batch_size=1)
        print(f"distill round {round_index + 1}/{self.rounds}: plain samples' reward median "
              f"{record['reward_median']:.3f} (mean {record['reward_mean']:.3f}), log-likelihood under the original "
              f"model {record['log_likelihood_original']:.1f}, calls so far {record['calls_total']}", flush=True)

    # -- the update ------------------------------------------------------------------------------------------- #

    def losses(self, x_t: Tensor, t: Tensor, targets: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """(forward-KL cross-entropy toward the teacher, KL to the pre-trained transition), per state, summed
        over positions and divided by the length."""
        model = self.diffusion
        logp = model.logits(x_t, t)  # (B, L, V): log-probabilities at masked positions, copies elsewhere
        masked = x_t == model.mask_index  # (B, L)
        cand = targets.long()
        revealed = masked.unsqueeze(1) & (cand != model.mask_index)  # (B, M, L)
        position = cand.clamp(max=model.vocab_size - 1) if model.states_are_data else model.index_of[cand]
        token_logp = logp.unsqueeze(1).expand(-1, cand.shape[1], -1, -1).gather(-1, position.unsqueeze(-1))
        token_logp = torch.where(revealed, token_logp.squeeze(-1), 0.0)
        cross_entropy = -(weights.unsqueeze(-1) * token_logp).sum((1, 2)) / x_t.shape[1]
        with torch.no_grad():
            reference = self.pretrained.logits(x_t, t)
        safe_p, safe_ref = (torch.where(masked.unsqueeze(-1), v, 0.0) for v in (logp, reference))
        per_position = (safe_p.exp() * (safe_p - safe_ref)).sum(-1)  # KL(p_theta || p_pre), 0 where unmasked
        kl = model.reveal_probability(t) * (per_position * masked).sum(1) / x_t.shape[1]
        return cross_entropy, kl

    def training_step(self, batch, batch_idx):
        step = self.global_step
        if step % self.steps_per_round == 0:
            self.run_round(step // self.steps_per_round)
        size = self.replay["t"].shape[0]
        picker = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        rows = torch.randint(size, (min(self.batch_size, size),), generator=picker).to(self.replay["t"].device)
        cross_entropy, kl = self.losses(self.replay["x_t"][rows].long(), self.replay["t"][rows],
                                        self.replay["targets"][rows], self.replay["weights"][rows])
        loss = cross_entropy.mean() + self.kl_weight * kl.mean()
        if self._trainer is not None:
            self.log_dict({"train/loss": loss, "train/teacher_cross_entropy": cross_entropy.mean(),
                           "train/kl_to_pretrained": kl.mean()}, prog_bar=True, batch_size=rows.numel())
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.diffusion.parameters(), lr=self.lr)


def compact(tokens: Tensor) -> Tensor:
    """Token states in a byte where they fit (the mask id included): the replay buffer, which the checkpoint holds,
    8x smaller. Weights and steps pass through."""
    if tokens.dtype == torch.long and tokens.numel() and int(tokens.max()) < 255 and int(tokens.min()) >= 0:
        return tokens.to(torch.uint8)
    return tokens


class RoundSteps(torch.utils.data.Dataset):
    """The optimiser steps of a distillation, one item each: the data is made by the module, round by round."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> int:
        return index


def default_alpha(reward_scale: float | None) -> float:
    """A tenth of the domain's reward scale (about one standard deviation of pre-trained rewards): a teacher close to
    SVDD-PM's greedy choice, but still a softmax (1 without a scale)."""
    return 0.1 * (1.0 if reward_scale is None or not math.isfinite(reward_scale) else float(reward_scale))
