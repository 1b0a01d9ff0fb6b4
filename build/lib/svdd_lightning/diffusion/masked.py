"""Absorbing-state (masked) discrete diffusion, MDLM "subs" parameterisation.

Schedule: log-linear noise, i.e. the probability that a token is still unmasked at step t is
alpha_t = 1 - t / T (sigma_t = -log(1 - t / T)). Going from t to s = t - 1, a masked token is
revealed with probability (alpha_s - alpha_t) / (1 - alpha_t) = 1 / t and then drawn from the
denoiser's p_theta(x_0 | x_t); unmasked tokens never change ("carry-over"). At the last step
(t = 1) every remaining mask is replaced by the denoiser's argmax, as in MDLM and the
reference SVDD code.

The network sees tokens in [0, V] (V = the mask token) and the time fraction t / T in (0, 1],
so a model trained with one T can be sampled with another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators


class MaskedDiffusion(Diffusion):
    # The sampler reveals positions independently of their content, so a trajectory's x_t given its end
    # point masks each position with probability t / T: exactly add_noise.
    renoise_is_exact = True

    def __init__(self, *, network: nn.Module, vocab_size: int, seq_len: int, num_steps: int = 128) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        self.network = network
        self.vocab_size = vocab_size
        self.mask_index = vocab_size
        self.seq_len = seq_len
        self.num_steps = num_steps
        self.event_shape = (seq_len,)

    # -- schedule -----------------------------------------------------------------------
    def mask_probability(self, t: Tensor) -> Tensor:
        """1 - alpha_t: the probability that a token is masked at step t."""
        return t.float() / self.num_steps

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
        raw = self.network(x_t, t.float() / self.num_steps)[..., : self.vocab_size]
        logp = F.log_softmax(raw.float(), dim=-1)
        carry = F.one_hot(x_t.clamp(max=self.vocab_size - 1), self.vocab_size).bool()
        unmasked = (x_t != self.mask_index).unsqueeze(-1)
        copied = torch.where(carry, 0.0, -torch.inf)
        return torch.where(unmasked, copied, logp)

    def denoise(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        return self.logits(x_t, t).exp()

    def x0_estimate(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> Tensor:
        # Argmax at masked positions; unmasked positions are one-hot, so argmax keeps them.
        return denoised.argmax(dim=-1)

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
        # Draw per sample: reveal decisions (B, M, L) and Gumbel noise over tokens (B, M, L, V).
        reveal_u = ops.rand(generators, (m, length), x_t.device)
        noise = ops.gumbel(generators, (m, length, self.vocab_size), x_t.device)
        sampled = (denoised.clamp_min(1e-30).log().unsqueeze(1) + noise).argmax(dim=-1)
        greedy = denoised.argmax(dim=-1).unsqueeze(1).expand(-1, m, -1)
        last = (t == 1).view(-1, 1, 1)
        tokens = torch.where(last, greedy, sampled)
        reveal_prob = (1.0 / t.float()).view(-1, 1, 1)
        reveal = reveal_u < reveal_prob
        masked = (x_t == self.mask_index).unsqueeze(1)
        current = x_t.unsqueeze(1).expand(-1, m, -1)
        return torch.where(masked & reveal, tokens, current)

    def token_log_likelihood_terms(self, x0: Tensor, t: Tensor, generators: Generators | None) -> Tensor:
        """Per-sample T * E-term of the discrete-time ELBO at step t: -(T/t) sum_masked log p."""
        x_t = self.add_noise(x0, t, generators)
        logp = self.logits(x_t, t)
        token_logp = logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        masked = x_t == self.mask_index
        token_logp = torch.where(masked, token_logp, torch.zeros_like(token_logp))
        weight = self.num_steps / t.float()
        return weight * token_logp.sum(dim=-1)

    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        # The ELBO is sum_{t=1..T} E[(1/t) sum_masked log p(x0 | x_t)]; estimate the sum over t
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
