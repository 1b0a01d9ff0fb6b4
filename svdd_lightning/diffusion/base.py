"""The Diffusion contract: all noise-schedule arithmetic lives behind it.

Decoders only call these methods, so a user can wrap their own pre-trained model (any
architecture, any schedule) by implementing this class and reuse every decoder unchanged.

Time convention: integer steps. ``t = num_steps`` is pure noise, ``t = 0`` is clean data, and
one ``step``/``propose`` moves from ``t`` to ``t - 1``. ``t`` is an int or a (B,) long tensor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from svdd_lightning import ops
from svdd_lightning.ops import Generators


@dataclass
class StepOutput:
    """One reverse step: the next state and the denoiser's estimate at the current one."""

    prev_sample: Tensor
    pred_original_sample: Tensor


class Diffusion(nn.Module, ABC):
    """A frozen-at-decode-time pre-trained diffusion model over events of ``event_shape``."""

    num_steps: int
    event_shape: tuple[int, ...]
    # Whether add_noise(x_0, t) draws x_t from the same law as the sampler's own trajectories given their
    # end point x_0 (so MC value regression may draw fresh states, value_training.renoise=true).
    renoise_is_exact: bool = False
    # Whether the states are the data themselves. A latent model's states are latents: ``to_data`` decodes
    # them (through a VAE) for rewards and output files.
    states_are_data: bool = True
    # Whether two states can be the same object (token states can; Gaussian states never coincide), so that
    # decoders evaluate each distinct state once (svdd_lightning/distinct.py).
    states_can_repeat: bool = False
    # Whether no step draws anything (a flow model's ODE), so that candidates of one state all coincide and decoders
    # that choose among them are refused (svdd_lightning/modules/decoding.py).
    draws_nothing: bool = False

    def timesteps(self) -> list[int]:
        """Reverse-time grid T, T-1, ..., 1: each is the ``t`` of one step to ``t - 1``."""
        return list(range(self.num_steps, 0, -1))

    def as_time(self, t: int | Tensor, batch_size: int) -> Tensor:
        """``t`` as a (B,) long tensor on the model's device."""
        device = self.device
        if isinstance(t, Tensor):
            return t.to(device=device, dtype=torch.long).expand(batch_size) if t.dim() == 0 else t.to(device)
        return torch.full((batch_size,), int(t), dtype=torch.long, device=device)

    @property
    def device(self) -> torch.device:
        # Buffers too: a network with no weights (an analytic velocity in the tests) still has the schedule's.
        tensor = next(self.parameters(), None)
        return (tensor if tensor is not None else next(self.buffers())).device

    @abstractmethod
    def prior(self, batch_size: int, generators: Generators) -> Tensor:
        """x_T of shape (B, *event_shape)."""

    @abstractmethod
    def add_noise(self, x0: Tensor, t: int | Tensor, generators: Generators | None = None) -> Tensor:
        """The forward process q(x_t | x_0); ``generators=None`` draws from the global RNG
        (training), a list draws per sample (reproducible decoding)."""

    @abstractmethod
    def denoise(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        """The network's estimate of x_0 at x_t: the posterior mean (Gaussian) or per-position
        token probabilities (B, *event, V) (masked). Differentiable; one network call."""

    @abstractmethod
    def x0_estimate(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> Tensor:
        """A clean object in data space from ``denoise``'s output (for posterior-mean values)."""

    @abstractmethod
    def propose(
        self,
        x_t: Tensor,
        t: int | Tensor,
        num_candidates: int,
        generators: Generators,
        denoised: Tensor | None = None,
    ) -> Tensor:
        """M draws from p_pre(x_{t-1} | x_t): (B, M, *event). One network call (none when
        ``denoised``, the output of ``denoise(x_t, t)``, is passed in)."""

    def is_deterministic_step(self, t: int) -> bool:
        """Whether the step from ``t`` to ``t - 1`` draws nothing, so that every candidate
        ``propose`` makes is the same object (masked diffusion's final argmax step, a DDIM step
        with sigma = 0). Decoders then propose one candidate instead of M: the others would be
        copies, scored again for nothing. False unless a subclass knows better."""
        return False

    def step(
        self, x_t: Tensor, t: int | Tensor, generators: Generators, denoised: Tensor | None = None
    ) -> StepOutput:
        """One pre-trained reverse step; identical in distribution and randomness to
        ``propose`` with one candidate."""
        if denoised is None:
            denoised = self.denoise(x_t, t)
        prev = self.propose(x_t, t, 1, generators, denoised=denoised).squeeze(1)
        return StepOutput(prev_sample=prev, pred_original_sample=denoised)

    def to_data(self, x0: Tensor) -> Tensor:
        """Clean states as data (pixels for a latent model); the states themselves by default.
        Differentiable, so DPS can backpropagate a reward of the data through it."""
        return x0

    @abstractmethod
    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        """A lower bound (negative ELBO) on log p_pre(x0) in nats, (B,)."""

    @abstractmethod
    def training_loss(self, x0: Tensor) -> Tensor:
        """The pre-training objective on a clean batch (scalar), global RNG."""


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """(B,) per-sample coefficients viewed to broadcast against ``like`` (B, ...)."""
    return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def stratified_diffusion_terms(term: Callable[[Tensor], Tensor], *, generators: Generators, batch_size: int,
                               num_train_steps: int, num_estimates: int, device: torch.device) -> Tensor:
    """The sum over k = 2..K of a variational bound's diffusion terms, (B,) float64, estimated without bias as
    (K - 1) times the mean of ``term(k)`` over ``num_estimates`` stratified k per sample (one uniform draw per
    stratum from ``generators``, then whatever ``term`` draws). Shared by the Gaussian and flow bounds, whose
    terms differ."""
    total = torch.zeros(batch_size, dtype=torch.float64, device=device)
    if num_train_steps < 2:
        return total
    u = ops.rand(generators, (num_estimates,), device).double()
    width = (num_train_steps - 1) / num_estimates
    for i in range(num_estimates):
        k = (2 + ((i + u[:, i]) * width).floor().long()).clamp(2, num_train_steps)
        total = total + term(k)
    return total * (num_train_steps - 1) / num_estimates
