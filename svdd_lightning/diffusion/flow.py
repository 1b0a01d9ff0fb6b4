"""Flow matching (rectified flow): Stable Diffusion 3, SD 3.5 and rectified-flow models trained here, on the same
Diffusion contract as GaussianDiffusion, so every decoder runs on them.

The interpolant is diffusers' ``FlowMatchEulerDiscreteScheduler``'s: x_sigma = (1 - sigma) x_0 + sigma eps, sigma in
[0, 1], and the network predicts the velocity v = eps - x_0 (dx/dsigma). The decoding grid is the scheduler's own
(``set_timesteps``, with its ``shift``, ``use_dynamic_shifting`` and ``mu``): decode step t = num_steps .. 1 moves from
sigma_t to sigma_{t-1}, with sigma_0 = 0 clean data. Tweedie's x0-hat = x_t - sigma v; eps-hat = x_t + (1 - sigma) v.

Two samplers share the grid:

- ``stochasticity = 0``: the ODE, x_{t-1} = x_t + (sigma_{t-1} - sigma_t) v: the scheduler's Euler ``step`` itself.
  Nothing is drawn, so every candidate a decoder proposes would be the same object; decoders that choose among
  candidates refuse it (svdd_lightning/modules/decoding.py) rather than spend M calls on copies.
- ``stochasticity > 0``: the SDE with the ODE's marginals (Kim et al. 2025, "Inference-Time Scaling for Flow Models
  via Stochastic Generation"): with score = -eps_hat / sigma and a diffusion coefficient g(sigma),
      dx = [v - g^2 / 2 * score] dsigma + g dW   (sigma decreasing),
  one Euler-Maruyama step: mean x_t + dsigma (v + g^2 / (2 sigma) eps_hat), standard deviation g sqrt(-dsigma).
  g = stochasticity * sigma (``diffusion_coefficient=sigma``) or the constant stochasticity (``constant``). The
  transition is Gaussian, so SMC-style weights have its log-density (:meth:`FlowDiffusion.transition_log_prob`).
  diffusers' own ``stochastic_sampling`` flag re-noises x0-hat fully and has no such density.

The last step (to sigma = 0) is always the ODE's, which lands on x0-hat: adding noise there would leave it in the
sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion, per_sample, stratified_diffusion_terms
from svdd_lightning.ops import Generators
from svdd_lightning.ranges import NonNegative

DIFFUSION_COEFFICIENTS = ("sigma", "constant")


class FlowDiffusion(Diffusion):
    def __init__(
        self,
        *,
        network: nn.Module,
        event_shape: Sequence[int],
        sigmas: Sequence[float],
        timesteps: Sequence[float] | None = None,
        num_train_timesteps: int = 1000,
        stochasticity: NonNegative = 0.0,
        diffusion_coefficient: Literal["sigma", "constant"] = "sigma",
        timestep_input: Literal["scheduler", "fraction"] = "scheduler",
    ) -> None:
        """
        Args:
            network: ``network(x_sigma, time) -> velocity`` (eps - x_0), ``time`` as ``timestep_input`` says.
            event_shape: shape of one state, e.g. (C, H, W).
            sigmas: the decoding grid, descending, ending at 0 (a scheduler's ``sigmas`` after
                ``set_timesteps(num_steps)``: num_steps + 1 values).
            timesteps: what the network receives as time at each decoding step (the scheduler's ``timesteps``,
                num_steps values); default sigma * num_train_timesteps (or sigma itself for ``fraction``).
            num_train_timesteps: the scheduler's time scale (timestep = sigma * num_train_timesteps).
            stochasticity: the SDE's noise level; 0 is the ODE.
            diffusion_coefficient: g(sigma) = stochasticity * sigma (``sigma``) or stochasticity (``constant``).
            timestep_input: ``scheduler`` (sigma * num_train_timesteps, as diffusers' transformers expect) or
                ``fraction`` (sigma).
        """
        super().__init__()
        shape = tuple(int(s) for s in event_shape)
        if len(shape) == 0 or any(s < 1 for s in shape):
            raise ValueError(f"event_shape must be a non-empty sequence of positive sizes, got {tuple(event_shape)}")
        grid = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
        if grid.numel() < 2 or not bool(torch.isfinite(grid).all()) or float(grid[-1]) != 0.0 or bool((grid[:-1] <= 0).any()) or bool((grid > 1).any()) \
                or bool((grid.diff() >= 0).any()):
            raise ValueError(f"sigmas must descend strictly from at most 1 to a final 0 (a FlowMatchEulerDiscrete"
                             f"Scheduler's sigmas after set_timesteps; invert_sigmas is not supported), got "
                             f"{grid.tolist()[:4]}... ({grid.numel()} values)")
        if not (isinstance(stochasticity, (int, float)) and math.isfinite(stochasticity) and stochasticity >= 0):
            raise ValueError(f"stochasticity must be a number >= 0 (0 = the ODE), got {stochasticity!r}")
        if diffusion_coefficient not in DIFFUSION_COEFFICIENTS:
            raise ValueError(f"diffusion_coefficient must be one of {DIFFUSION_COEFFICIENTS}, got "
                             f"{diffusion_coefficient!r}")
        if timestep_input not in ("scheduler", "fraction"):
            raise ValueError(f"timestep_input must be 'scheduler' or 'fraction', got {timestep_input!r}")
        num_steps = grid.numel() - 1
        scale = float(num_train_timesteps) if timestep_input == "scheduler" else 1.0
        times = grid[:-1] * scale if timesteps is None else torch.as_tensor(timesteps, dtype=torch.float32).flatten()
        if times.numel() != num_steps:
            raise ValueError(f"timesteps has {times.numel()} entries but sigmas gives {num_steps} steps")
        self.network = network
        self.event_shape = shape
        self.num_steps = num_steps
        self.num_train_timesteps = int(num_train_timesteps)
        self.time_scale = scale
        self.stochasticity = float(stochasticity)
        self.diffusion_coefficient = diffusion_coefficient
        self.timestep_input = timestep_input
        # Indexed by decode step t: sigma_at[t] (sigma_at[0] = 0), network_time_at[t] (unused at t = 0). Not
        # persistent: a checkpoint does not pin the grid, so one model decodes with any number of steps.
        self.register_buffer("sigma_at", grid.flip(0).contiguous(), persistent=False)
        self.register_buffer("network_time_at", torch.cat([torch.zeros(1), times.flip(0)]), persistent=False)

    # -- schedule -----------------------------------------------------------------------
    def sigma(self, t: int | Tensor, batch_size: int) -> Tensor:
        return self.sigma_at[self.as_time(t, batch_size)]

    def velocity(self, x: Tensor, time: Tensor) -> Tensor:
        return self.network(x, time).to(x.dtype)

    def coefficient(self, sigma: Tensor) -> Tensor:
        """g(sigma) of the SDE."""
        if self.diffusion_coefficient == "sigma":
            return self.stochasticity * sigma
        return torch.full_like(sigma, self.stochasticity)

    def transition(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, standard deviation (B,)) of the step from t to t - 1, from x0-hat (``denoised``)."""
        batch = x_t.shape[0]
        t = self.as_time(t, batch)
        sigma, sigma_next = self.sigma_at[t], self.sigma_at[t - 1]
        s, ds = per_sample(sigma, x_t), per_sample(sigma_next - sigma, x_t)
        # The velocity recovered from (x_t, x0-hat) rather than cached, so that a ``denoised`` edited elsewhere
        # (DPS) is used consistently; without edits it is the network's velocity up to float rounding.
        velocity = (x_t - denoised) / s
        if self.stochasticity == 0.0:
            return x_t + ds * velocity, torch.zeros_like(sigma)
        g = self.coefficient(sigma)
        eps = (x_t - (1 - s) * denoised) / s
        drift = velocity + per_sample(g.pow(2) / (2 * sigma), x_t) * eps
        last = sigma_next == 0  # the final step is the ODE's: it lands on x0-hat
        mean = torch.where(per_sample(last, x_t).bool(), x_t + ds * velocity, x_t + ds * drift)
        std = torch.where(last, torch.zeros_like(g), g * (sigma - sigma_next).sqrt())
        return mean, std

    # -- contract -----------------------------------------------------------------------
    def is_deterministic_step(self, t: int) -> bool:
        return self.stochasticity == 0.0 or int(t) == 1

    @property
    def draws_nothing(self) -> bool:  # the Diffusion contract's flag, derived from the noise level
        return self.stochasticity == 0.0

    def prior(self, batch_size: int, generators: Generators) -> Tensor:
        if len(generators) != batch_size:
            raise ValueError(f"prior needs one generator per sample: batch_size={batch_size}, got {len(generators)}")
        return ops.randn(generators, self.event_shape, self.device)

    def interpolate(self, x0: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
        s = per_sample(sigma, x0)
        return (1 - s) * x0 + s * noise

    def add_noise(self, x0: Tensor, t: int | Tensor, generators: Generators | None = None) -> Tensor:
        noise = torch.randn_like(x0) if generators is None else ops.randn(generators, x0.shape[1:], x0.device).to(x0.dtype)
        return self.interpolate(x0, self.sigma(t, x0.shape[0]), noise)

    def denoise(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        """x0-hat = x_t - sigma v (the flow's Tweedie estimate)."""
        t = self.as_time(t, x_t.shape[0])
        return x_t - per_sample(self.sigma_at[t], x_t) * self.velocity(x_t, self.network_time_at[t])

    def x0_estimate(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> Tensor:
        return denoised

    def propose(self, x_t: Tensor, t: int | Tensor, num_candidates: int, generators: Generators,
                denoised: Tensor | None = None) -> Tensor:
        """M draws of x_{t-1} (B, M, *event): the SDE step, or M copies of the ODE step when stochasticity = 0."""
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        if isinstance(t, int) and not 1 <= t <= self.num_steps:
            raise ValueError(f"propose needs a step t in [1, num_steps={self.num_steps}], got {t}")
        if denoised is None:
            denoised = self.denoise(x_t, t)
        mean, std = self.transition(x_t, t, denoised)
        mean = mean.unsqueeze(1).expand(x_t.shape[0], num_candidates, *x_t.shape[1:])
        if self.is_deterministic_step(t) if isinstance(t, int) else bool((std == 0).all()):
            return mean.contiguous()
        z = ops.randn(generators, (num_candidates, *x_t.shape[1:]), x_t.device).to(x_t.dtype)
        return mean + std.to(x_t.dtype).view(-1, 1, *([1] * (x_t.dim() - 1))) * z

    def transition_log_prob(self, x_prev: Tensor, x_t: Tensor, t: int | Tensor,
                            denoised: Tensor | None = None) -> Tensor:
        """log p(x_prev | x_t) of the stochastic step from t to t - 1 in nats, summed over dimensions, (B,) for
        x_prev (B, *event) or (B, M) for candidates (B, M, *event). A deterministic step has no density."""
        if denoised is None:
            denoised = self.denoise(x_t, t)
        mean, std = self.transition(x_t, t, denoised)
        time = self.as_time(t, x_t.shape[0])
        if bool(((time < 1) | (time > self.num_steps)).any()):
            raise ValueError(f"transition_log_prob needs steps t in [1, num_steps={self.num_steps}]")
        if bool((std == 0).any()):
            if self.stochasticity == 0.0:
                raise ValueError("the step is deterministic (stochasticity = 0: the ODE): a point mass has no "
                                 "transition density; set stochasticity > 0")
            raise ValueError("the final step (t = 1, to sigma = 0) is always the ODE's, deterministic: a point mass "
                             "has no transition density")
        lead = x_prev.dim() - len(self.event_shape)  # 1: (B, *event); 2: (B, M, *event)
        if lead == 2:
            mean = mean.unsqueeze(1)
        scale = std.double().view(-1, *([1] * (x_prev.dim() - 1)))
        quadratic = ((x_prev.double() - mean.double()) / scale).pow(2).flatten(lead).sum(-1)
        normaliser = math.prod(self.event_shape) * (std.double().log() + 0.5 * math.log(2 * math.pi))
        return (-0.5 * quadratic - (normaliser.unsqueeze(1) if lead == 2 else normaliser)).float()

    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        """A variational lower bound on log p(x_0) in nats, summed over dimensions, (B,).

        The interpolant is a Gaussian diffusion with signal-to-noise ratio SNR(sigma) = ((1 - sigma) / sigma)^2, and
        x0-hat does not depend on how x_sigma is scaled, so the discrete-time bound of Kingma et al. (2021) holds on
        the grid sigma_k = k / K (K = num_train_timesteps) as for GaussianDiffusion:
            -sum_{k=2}^{K} 0.5 (SNR_{k-1} - SNR_k) E||x_0 - x0_hat(x_{sigma_k})||^2 + log N(x_0; x0_hat(x_{sigma_1}),
            SNR_1^-1 I),
        with no prior term (x_1 is pure noise). The sum is estimated from ``num_estimates`` stratified k per sample;
        network calls: num_estimates + 1. It bounds the ancestral sampler on that grid, not this decoder's."""
        if num_estimates < 1:
            raise ValueError(f"num_estimates must be >= 1, got {num_estimates}")
        big_k = self.num_train_timesteps
        x0 = x0.float()
        dims = tuple(range(1, x0.dim()))
        device = x0.device
        batch = x0.shape[0]

        def snr(k: Tensor) -> Tensor:
            s = k.double() / big_k
            return ((1 - s) / s).pow(2)

        def error(k: Tensor) -> Tensor:
            sigma = (k.double() / big_k).float()
            x_k = self.interpolate(x0, sigma, ops.randn(generators, x0.shape[1:], device))
            x0_hat = x_k - per_sample(sigma, x_k) * self.velocity(x_k, sigma * self.time_scale)
            return (x0 - x0_hat.float()).double().pow(2).sum(dim=dims)

        ones = torch.ones(batch, dtype=torch.long, device=device)
        variance = 1.0 / float(snr(ones[:1]))
        recon = -0.5 * (x0[0].numel() * math.log(2 * math.pi * variance) + error(ones) / variance)
        diffusion_kl = stratified_diffusion_terms(lambda k: 0.5 * (snr(k - 1) - snr(k)) * error(k),
                                                  generators=generators, batch_size=batch, num_train_steps=big_k,
                                                  num_estimates=num_estimates, device=device)
        return (recon - diffusion_kl).float()

    def training_loss(self, x0: Tensor) -> Tensor:
        """The rectified-flow objective: ||v(x_sigma) - (eps - x_0)||^2 at sigma ~ U(0, 1) (global RNG)."""
        sigma = torch.rand(x0.shape[0], device=x0.device)
        noise = torch.randn_like(x0)
        out = self.network(self.interpolate(x0, sigma, noise), sigma * self.time_scale)
        return F.mse_loss(out.float(), (noise - x0).float())


class DiffusersVelocity(nn.Module):
    """A diffusers ``UNet2DModel`` (or any model returning ``.sample``) as a velocity network ``(x, timestep) -> v``."""

    def __init__(self, *, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, timestep: Tensor) -> Tensor:
        return self.model(x, timestep).sample


def flow_schedule(scheduler, num_inference_steps: int, mu: float | None = None) -> dict:
    """FlowDiffusion's grid arguments from a diffusers ``FlowMatchEulerDiscreteScheduler``: its ``sigmas`` and
    ``timesteps`` after ``set_timesteps(num_inference_steps, mu=mu)`` (its own shift, dynamic shifting and terminal
    stretch), and its time scale. Nothing is rebuilt from a schedule name."""
    config = scheduler.config
    if getattr(config, "invert_sigmas", False):
        raise ValueError("a scheduler with invert_sigmas=True (Mochi's) is not supported: its sigmas end at 1")
    if getattr(config, "use_dynamic_shifting", False) and mu is None:
        raise ValueError("the scheduler uses dynamic shifting (use_dynamic_shifting=true), so its grid needs mu: set "
                         "diffusion.mu=VALUE (for a Stable Diffusion 3 folder, diffusion.mu=null computes it from the "
                         "image size as the pipeline does)")
    if getattr(config, "stochastic_sampling", False):
        import warnings

        warnings.warn("the scheduler sets stochastic_sampling=True; it is not used: FlowDiffusion decodes with the ODE "
                      "(diffusion.stochasticity=0) or the SDE with the ODE's marginals (> 0), which has a transition "
                      "density", stacklevel=2)
    scheduler.set_timesteps(num_inference_steps, mu=mu)
    return dict(sigmas=scheduler.sigmas.tolist(), timesteps=scheduler.timesteps.tolist(),
                num_train_timesteps=int(config.num_train_timesteps), timestep_input="scheduler")


def from_diffusers(transformer: nn.Module, scheduler, *, num_inference_steps: int, event_shape: Sequence[int] | None = None,
                   mu: float | None = None, stochasticity: float = 0.0,
                   diffusion_coefficient: str = "sigma") -> FlowDiffusion:
    """A FlowDiffusion that runs a velocity model on its flow-matching scheduler's own grid. ``transformer``: a
    diffusers model called as ``model(x, timestep)`` (a ``UNet2DModel``; its ``.sample`` is read) or a network that
    returns the velocity itself (a text-conditioned SD3 transformer, svdd_lightning/diffusion/latent_flow.py).
    ``event_shape`` defaults to the model's (in_channels, sample_size, sample_size)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)
    network = transformer
    if hasattr(transformer, "config") and hasattr(transformer.config, "in_channels") \
            and type(transformer).__name__ == "UNet2DModel":
        network = DiffusersVelocity(model=transformer)
    if event_shape is None:
        size = transformer.config.sample_size
        event_shape = (transformer.config.in_channels, *((size, size) if isinstance(size, int) else size))
    diffusion = FlowDiffusion(network=network, event_shape=event_shape, stochasticity=stochasticity,
                              diffusion_coefficient=diffusion_coefficient,
                              **flow_schedule(scheduler, num_inference_steps, mu))
    diffusion.flow_scheduler = scheduler  # kept for reference (not a module: no weights)
    return diffusion


def diffusers_flow_unet(*, unet: nn.Module, scheduler, num_inference_steps: int, stochasticity: float = 1.0,
                        diffusion_coefficient: str = "sigma", mu: float | None = None) -> FlowDiffusion:
    """The Hydra form of :func:`from_diffusers` for a rectified-flow model built from config and trained here
    (``unet``: a ``diffusers.UNet2DModel`` node, ``scheduler``: a ``FlowMatchEulerDiscreteScheduler`` node)."""
    return from_diffusers(unet, scheduler, num_inference_steps=num_inference_steps, stochasticity=stochasticity,
                          diffusion_coefficient=diffusion_coefficient, mu=mu)
