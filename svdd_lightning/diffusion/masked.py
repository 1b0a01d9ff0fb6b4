"""Absorbing-state (masked) discrete diffusion, MDLM "subs" parameterisation, for any masked model.

Tokens live in the model's own vocabulary: the mask token is ``mask_index`` (wherever the model has it; V for
the models trained here) and ``token_ids`` are the V tokens that may be sampled (special tokens excluded;
0..V-1 here). The denoiser returns logits over the model's vocabulary; only the ``token_ids`` columns are read,
so p_theta(x_0 | x_t) is a distribution over the V sampleable tokens, and ``denoise`` returns it as (B, L, V).

Schedule: a :class:`~svdd_lightning.diffusion.schedules.MaskSchedule` (log-linear by default: a token is masked
with probability t / T). Going from t to s = t - 1, a masked token is revealed with the schedule's reveal
probability (1 / t for log-linear) and drawn from p_theta(x_0 | x_t); unmasked tokens never change
("carry-over"). The ELBO weights the same reveal probability. At the last step (t = 1) every remaining mask
is replaced by the denoiser's argmax, as in MDLM and the reference SVDD code.

The network sees the state and, by default, the time fraction t / T in (0, 1] (``time_input="fraction"``: a
model trained with one T can be sampled with another); masked language models that do not condition on time
(``time_input=None``) see the state alone.

Where the states are not the domain's token indices 0..V-1 (a masked language model's ids), ``to_data`` maps
them there and ``from_data`` back, so rewards, domains and files see the domain's indices as for our models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.distinct import in_whole_blocks
from svdd_lightning.diffusion.schedules import LogLinearSchedule, MaskSchedule
from svdd_lightning.ops import Generators
from svdd_lightning.ranges import AtLeastOne


class MaskedDiffusion(Diffusion):
    # The sampler reveals positions independently of their content, so a trajectory's x_t given its end
    # point masks each position with probability t / T: exactly add_noise.
    renoise_is_exact = True
    # Most of a step's candidates reveal nothing (probability about exp(-L / T)) and are the same object.
    states_can_repeat = True

    def __init__(self, *, network: nn.Module, vocab_size: AtLeastOne, seq_len: AtLeastOne, num_steps: AtLeastOne = 128,
                 mask_index: int | None = None, token_ids: list[int] | None = None,
                 schedule: MaskSchedule | None = None, time_input: str | None = "fraction") -> None:
        """
        Args:
            network: ``network(x_t, t / T) -> logits`` (or ``network(x_t)`` with ``time_input=None``), logits over
                the model's vocabulary (at least the ``token_ids`` columns).
            vocab_size: V, the number of sampleable tokens.
            seq_len: L.
            num_steps: T.
            mask_index: the model's mask token id (default V).
            token_ids: the model ids of the V sampleable tokens, in the domain's order (default 0..V-1).
            schedule: the masking schedule (default log-linear).
            time_input: ``"fraction"`` (t / T) or None (the model does not condition on time).
        """
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if time_input not in ("fraction", None):
            raise ValueError(f"time_input must be 'fraction' or None (a model without time), got {time_input!r}")
        ids = list(range(vocab_size)) if token_ids is None else [int(i) for i in token_ids]
        mask_index = vocab_size if mask_index is None else int(mask_index)
        if len(ids) != vocab_size or len(set(ids)) != vocab_size or mask_index in ids or min(ids) < 0:
            raise ValueError(f"token_ids must be {vocab_size} distinct non-negative ids without the mask id "
                             f"{mask_index}, got {ids}")
        self.network = network
        self.vocab_size = vocab_size
        self.mask_index = mask_index
        self.seq_len = seq_len
        self.num_steps = num_steps
        self.event_shape = (seq_len,)
        self.schedule = schedule or LogLinearSchedule()
        self.time_input = time_input
        # Our own models: states are the domain's indices and the mask is V (no lookups on the hot path).
        self.states_are_data = ids == list(range(vocab_size)) and mask_index == vocab_size
        size = max(max(ids), mask_index) + 1
        index_of = torch.zeros(size, dtype=torch.long)  # model id -> position among the sampleable tokens
        index_of[torch.tensor(ids)] = torch.arange(vocab_size)
        self.register_buffer("token_ids", torch.tensor(ids, dtype=torch.long), persistent=False)
        self.register_buffer("index_of", index_of, persistent=False)
        mask_table, reveal_table = self.schedule.tables(num_steps)
        self.register_buffer("mask_table", mask_table, persistent=False)
        self.register_buffer("reveal_table", reveal_table, persistent=False)

    # -- where a partial decode begins (inpainting, refinement: svdd_lightning/starts.py) ---------
    def step_for_fraction(self, fraction: float) -> int:
        """The first step whose mask probability reaches ``fraction``, and at least 2 (when T >= 2): step 1 is the
        final argmax, which draws nothing, so a decode that started there would leave decoders no candidates."""
        reached = (self.mask_table >= fraction - 1e-9).nonzero()
        step = int(reached[0, 0]) if len(reached) else self.num_steps
        return max(step, min(2, self.num_steps))

    # -- schedule -----------------------------------------------------------------------
    def mask_probability(self, t: Tensor) -> Tensor:
        """1 - alpha_t: the probability that a token is masked at step t."""
        return self.mask_table[t.long()]

    def reveal_probability(self, t: Tensor) -> Tensor:
        """(alpha_{t-1} - alpha_t) / (1 - alpha_t): the probability that a masked token is revealed from t to
        t - 1, and the weight of step t in the ELBO."""
        return self.reveal_table[t.long()]

    # -- states <-> the domain's token indices ------------------------------------------
    def to_data(self, x0: Tensor) -> Tensor:
        """Model ids -> the domain's indices 0..V-1 (the mask, if any is left, -> V). Soft one-hots (float,
        over the V sampleable tokens, from DPS) already are."""
        if self.states_are_data or x0.is_floating_point():
            return x0
        return torch.where(x0 == self.mask_index, self.vocab_size, self.index_of[x0.clamp(max=len(self.index_of) - 1)])

    def from_data(self, tokens: Tensor) -> Tensor:
        """The domain's indices 0..V-1 (V = mask) -> model ids."""
        if self.states_are_data:
            return tokens
        masked = tokens >= self.vocab_size
        return torch.where(masked, self.mask_index, self.token_ids[tokens.clamp(max=self.vocab_size - 1)])

    # -- contract -----------------------------------------------------------------------
    def is_deterministic_step(self, t: int) -> bool:
        # At t = 1 every remaining mask becomes the denoiser's argmax: nothing is drawn.
        return int(t) == 1

    def prior(self, batch_size: int, generators: Generators) -> Tensor:
        return torch.full((batch_size, self.seq_len), self.mask_index, dtype=torch.long, device=self.device)

    def add_noise(self, x0: Tensor, t: int | Tensor, generators: Generators | None = None) -> Tensor:
        t = self.as_time(t, x0.shape[0])
        if generators is None:
            u = torch.rand(x0.shape, device=x0.device)
        else:
            u = ops.rand(generators, x0.shape[1:], x0.device)
        masked = u < self.mask_probability(t).view(-1, *([1] * (x0.dim() - 1)))
        return torch.where(masked, torch.full_like(x0, self.mask_index), x0)

    def logits(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        """Log-probabilities over the V data tokens with the subs parameterisation: the mask
        token has zero mass and unmasked positions are copied through."""
        t = self.as_time(t, x_t.shape[0])
        # In whole blocks of rows, so that a row's output does not depend on the rows beside it (distinct.py).
        if self.time_input:
            out = in_whole_blocks(self.network, x_t, t.float() / self.num_steps)
        else:
            out = in_whole_blocks(self.network, x_t)
        raw = out[..., : self.vocab_size] if self.states_are_data else out.index_select(-1, self.token_ids)
        logp = F.log_softmax(raw.float(), dim=-1)
        position = x_t.clamp(max=self.vocab_size - 1) if self.states_are_data else self.index_of[x_t]
        carry = F.one_hot(position, self.vocab_size).bool()
        unmasked = (x_t != self.mask_index).unsqueeze(-1)
        copied = torch.where(carry, 0.0, -torch.inf)
        return torch.where(unmasked, copied, logp)

    def denoise(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        return self.logits(x_t, t).exp()

    def x0_estimate(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> Tensor:
        # Argmax at masked positions; unmasked positions are one-hot, so argmax keeps them.
        return self.to_ids(denoised.argmax(dim=-1))

    def to_ids(self, positions: Tensor) -> Tensor:
        """Positions among the sampleable tokens -> model ids."""
        return positions if self.states_are_data else self.token_ids[positions]

    def propose(
        self,
        x_t: Tensor,
        t: int | Tensor,
        num_candidates: int,
        generators: Generators,
        denoised: Tensor | None = None,
    ) -> Tensor:
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        batch, length = x_t.shape
        t = self.as_time(t, batch)
        if denoised is None:
            denoised = self.denoise(x_t, t)
        m = num_candidates
        # Draw per sample: reveal decisions (B, M, L) and Gumbel noise over tokens (B, M, L, V). All of it is drawn,
        # so each generator's stream does not depend on what is revealed, but the Gumbel transform and the argmax
        # run only where a masked token is revealed (about L / T positions per candidate, not M x L x V numbers).
        reveal_u = ops.rand(generators, (m, length), x_t.device)
        gumbel_u = ops.rand(generators, (m, length, self.vocab_size), x_t.device)
        masked = (x_t == self.mask_index).unsqueeze(1)
        revealed = masked & (reveal_u < self.reveal_probability(t).view(-1, 1, 1))
        rows, candidates, positions = revealed.nonzero(as_tuple=True)
        probs = denoised[rows, positions]  # (R, V)
        sampled = (probs.clamp_min(1e-30).log() + ops.gumbel_of(gumbel_u[rows, candidates, positions])).argmax(dim=-1)
        # At the last step (t = 1) every remaining mask becomes the denoiser's argmax.
        tokens = torch.where(t[rows] == 1, probs.argmax(dim=-1), sampled)
        out = x_t.unsqueeze(1).expand(-1, m, -1).clone()
        out[rows, candidates, positions] = self.to_ids(tokens)
        return out

    def token_log_likelihood_terms(self, x0: Tensor, t: Tensor, generators: Generators | None) -> Tensor:
        """Per-sample T * (the ELBO's term of step t): T * w_t sum_masked log p, w_t the reveal probability."""
        x_t = self.add_noise(x0, t, generators)
        logp = self.logits(x_t, t)
        position = x0 if self.states_are_data else self.index_of[x0]
        token_logp = logp.gather(-1, position.unsqueeze(-1)).squeeze(-1)
        masked = x_t == self.mask_index
        token_logp = torch.where(masked, token_logp, torch.zeros_like(token_logp))
        weight = self.num_steps * self.reveal_probability(t)
        return weight * token_logp.sum(dim=-1)

    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        """The ELBO of samples as they leave (the domain's indices; mapped to the model's ids here)."""
        x0 = self.from_data(x0)
        # The ELBO is sum_{t=1..T} E[w_t sum_masked log p(x0 | x_t)] (w_t = 1/t for log-linear); estimate the sum over t
        # with num_estimates stratified steps (T * mean over t = the sum).
        batch = x0.shape[0]
        grid = torch.linspace(1, self.num_steps, num_estimates).round().long().clamp(1, self.num_steps)
        total = torch.zeros(batch, device=x0.device)
        for t_value in grid.tolist():
            t = torch.full((batch,), t_value, dtype=torch.long, device=x0.device)
            total = total + self.token_log_likelihood_terms(x0, t, generators)
        return total / len(grid)

    def training_loss(self, x0: Tensor) -> Tensor:
        # Negative ELBO per token with antithetic (stratified) step sampling to cut variance.
        batch = x0.shape[0]
        offset = torch.rand((), device=x0.device)
        frac = (offset + torch.arange(batch, device=x0.device) / batch) % 1.0
        t = (frac * self.num_steps).long() + 1
        elbo = self.token_log_likelihood_terms(x0, t, None)
        return -(elbo.mean() / self.seq_len)
