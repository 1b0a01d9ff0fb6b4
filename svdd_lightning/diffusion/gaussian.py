"""Gaussian diffusion: DDPM training, DDIM decoding with a configurable eta, on a scheduler's own schedule.

The schedule is a table, never a name: ``alphas_cumprod`` (abar for the training timesteps, as a diffusers
scheduler holds it) and, optionally, the scheduler's decoding grid. :func:`from_diffusers` reads both from a
diffusers scheduler; :func:`diffusers_unet` is its Hydra form for a model trained here.

Two time grids. Training uses the full grid of K = len(alphas_cumprod) timesteps k = 1..K (our k is the
scheduler's 0-based timestep + 1) with q(x_k | x_0) = N(sqrt(abar_k) x_0, (1 - abar_k) I) and abar_0 = 1.
Decoding uses ``num_steps`` DDIM steps on the scheduler's grid (``timesteps``), or by default on the evenly
spaced ("trailing") subsequence tau_t = floor(t * K / num_steps), so decode step t = num_steps is the last
training timestep and t = 0 is clean data. One trained model can be decoded with any ``num_steps <= K``;
the tables are not stored in checkpoints.

The network predicts epsilon, v or x_0 (``prediction_type``), from ``network(x_k, time)`` with time the
scheduler's timestep index (diffusers models) or the fraction k / K.

Caveat for schedules whose last abar is tiny (the cosine schedule's is about 1e-9 at K = 1000): an x0-hat
taken there multiplies any error in eps_hat by ~1/sqrt(abar_K), and the first DDIM step carries that error
into x_{T-1}. For data with known bounds (images in [-1, 1]) pass ``clip_sample`` as DDPM/DDIM image samplers
do (the scheduler's ``clip_sample_range``).
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
from svdd_lightning.ranges import AtLeastOne, Positive, Probability

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class GaussianDiffusion(Diffusion):
    def __init__(
        self,
        *,
        network: nn.Module,
        event_shape: Sequence[int],
        alphas_cumprod: Sequence[float],
        num_steps: AtLeastOne = 50,
        eta: Probability = 1.0,
        clip_sample: Positive | None = None,
        timesteps: Sequence[int] | None = None,
        prev_timesteps: Sequence[int] | None = None,
        final_alpha_cumprod: float = 1.0,
        prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon",
        timestep_input: Literal["fraction", "index"] = "fraction",
    ) -> None:
        """
        Args:
            network: ``network(x_k, time) -> output`` (see ``prediction_type`` and ``timestep_input``).
            event_shape: shape of one clean object, e.g. (C, H, W).
            alphas_cumprod: the scheduler's abar for its training timesteps 0..K-1 (diffusers'
                ``scheduler.alphas_cumprod``): positive, at most 1, non-increasing.
            num_steps: DDIM decoding steps (``<= K``); may differ from training.
            eta: DDIM stochasticity in [0, 1]; 1 gives DDPM's posterior variance on the
                decoding grid, 0 gives deterministic DDIM.
            clip_sample: if set, x0-hat is clamped to [-clip_sample, clip_sample].
            timesteps, prev_timesteps: a scheduler's decoding grid (``scheduler.timesteps`` after
                ``set_timesteps(num_steps)``, descending) and each step's previous timestep (negative:
                the final step, which lands on ``final_alpha_cumprod``); default: the trailing grid.
            prediction_type: what the network predicts: epsilon, v_prediction (v = sqrt(abar) eps -
                sqrt(1 - abar) x_0) or sample (x_0 itself).
            timestep_input: what the network receives as time: ``fraction`` (k / K) or ``index`` (the
                scheduler's 0-based timestep k - 1, as diffusers models expect).
        """
        super().__init__()
        shape = tuple(int(s) for s in event_shape)
        if len(shape) == 0 or any(s < 1 for s in shape):
            raise ValueError(f"event_shape must be a non-empty sequence of positive sizes, got {tuple(event_shape)}")
        table = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
        train_steps = table.numel()
        if train_steps < 1 or not bool(((table > 0) & (table <= 1)).all()) or bool((table.diff() > 0).any()):
            raise ValueError(f"alphas_cumprod must be a non-empty, non-increasing table of values in (0, 1] (a "
                             f"scheduler's alphas_cumprod), got {train_steps} values")
        if not 1 <= num_steps <= train_steps:
            raise ValueError(f"num_steps must be in [1, K={train_steps}] (the scheduler's training timesteps), "
                             f"got {num_steps}")
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise ValueError(f"eta must be a number in [0, 1] (0 = deterministic DDIM, 1 = DDPM-like), got {eta!r}")
        if clip_sample is not None and not (math.isfinite(clip_sample) and clip_sample > 0):
            raise ValueError(f"clip_sample must be None (no clipping) or a positive finite bound, got {clip_sample!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        if timestep_input not in ("fraction", "index"):
            raise ValueError(f"timestep_input must be 'fraction' or 'index', got {timestep_input!r}")
        if timesteps is not None and len(timesteps) != num_steps:
            raise ValueError(f"timesteps has {len(timesteps)} entries but num_steps={num_steps}")
        self.network = network
        self.event_shape = shape
        self.num_steps = int(num_steps)
        self.train_steps = int(train_steps)
        self.eta = float(eta)
        self.clip_sample = None if clip_sample is None else float(clip_sample)
        self.prediction_type = prediction_type
        self.timestep_input = timestep_input

        # All tables are computed in float64 and stored as float32; non-persistent, so they follow
        # .to(device) but a checkpoint does not pin num_steps/eta.
        # The scheduler's table, shifted: our k = its timestep + 1, and abar_0 = 1 is clean data.
        abar = torch.cat([torch.ones(1, dtype=torch.float64), table])
        snr = abar / (1 - abar)  # inf at k = 0, unused there
        kl_weight = torch.zeros_like(abar)
        # KL(q(x_{k-1} | x_k, x_0) || p(x_{k-1} | x_k)) with p's variance = the posterior's is
        # 0.5 (SNR_{k-1} - SNR_k) ||x_0 - x0_hat||^2 (Kingma et al. 2021), for k >= 2.
        kl_weight[2:] = 0.5 * (snr[1:-1] - snr[2:])
        self.register_buffer("alphas_cumprod", abar.float(), persistent=False)
        self.register_buffer("sqrt_alphas_cumprod", abar.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1 - abar).sqrt().float(), persistent=False)
        self.register_buffer("kl_weight", kl_weight.float(), persistent=False)
        self.beta_1 = float(1 - abar[1])  # variance of the reconstruction term p(x_0 | x_1)
        self.alpha_cumprod_last = float(abar[-1])

        if timesteps is None:
            tau = torch.arange(self.num_steps + 1) * self.train_steps // self.num_steps
            a = abar[tau]
            a_prev = torch.cat([torch.ones(1, dtype=torch.float64), a[:-1]])
        else:  # decode step t = num_steps .. 1 runs the scheduler's timesteps[0 .. num_steps - 1]
            grid = [int(k) for k in timesteps]
            prev = [int(k) for k in prev_timesteps] if prev_timesteps is not None else [*grid[1:], -1]
            tau = torch.tensor([0, *(k + 1 for k in reversed(grid))])
            a = abar[tau]
            prev_abar = [float(abar[k + 1]) if k >= 0 else float(final_alpha_cumprod) for k in reversed(prev)]
            a_prev = torch.tensor([1.0, *prev_abar], dtype=torch.float64)
        # DDIM (Song et al. 2021, eq. 16): sigma_t^2 = eta^2 (1 - a_prev)/(1 - a) (1 - a/a_prev);
        # with eta = 1 this is the DDPM posterior variance between tau_{t-1} and tau_t.
        sigma2 = torch.zeros_like(a)
        sigma2[1:] = self.eta**2 * (1 - a_prev[1:]) / (1 - a[1:]) * (1 - a[1:] / a_prev[1:])
        direction = (1 - a_prev - sigma2).clamp(min=0.0).sqrt()
        self.register_buffer("decode_timesteps", tau, persistent=False)
        self.register_buffer("ddim_sigma", sigma2.sqrt().float(), persistent=False)
        # Steps with sigma_t = 0, kept as Python ints so decoders can ask per step without a device sync.
        self.deterministic_steps = frozenset(int(t) for t in range(1, self.num_steps + 1) if float(sigma2[t]) == 0.0)
        self.register_buffer("ddim_direction", direction.float(), persistent=False)
        self.register_buffer("ddim_sqrt_alpha_prev", a_prev.sqrt().float(), persistent=False)

    # -- schedule -----------------------------------------------------------------------
    def training_timestep(self, t: int | Tensor, batch_size: int) -> Tensor:
        """Decode step t (0..num_steps) -> training timestep tau_t (0..train_steps), (B,) long."""
        return self.decode_timesteps[self.as_time(t, batch_size)]

    def q_sample(self, x0: Tensor, k: Tensor, noise: Tensor) -> Tensor:
        """x_k = sqrt(abar_k) x_0 + sqrt(1 - abar_k) noise, for training timesteps k (B,)."""
        signal = per_sample(self.sqrt_alphas_cumprod[k], x0)
        return signal * x0 + per_sample(self.sqrt_one_minus_alphas_cumprod[k], x0) * noise

    def network_time(self, k: Tensor) -> Tensor:
        """What the network receives as the time of training timesteps k (B,)."""
        return k - 1 if self.timestep_input == "index" else k.float() / self.train_steps

    def predict_x0(self, x_k: Tensor, k: Tensor) -> Tensor:
        """Tweedie's x0-hat at training timesteps k from one network call, whatever the network predicts
        (clipped when ``clip_sample`` is set)."""
        out = self.network(x_k, self.network_time(k)).to(x_k.dtype)
        signal = per_sample(self.sqrt_alphas_cumprod[k], x_k)
        noise_scale = per_sample(self.sqrt_one_minus_alphas_cumprod[k], x_k)
        if self.prediction_type == "epsilon":
            x0 = (x_k - noise_scale * out) / signal
        elif self.prediction_type == "v_prediction":
            x0 = signal * x_k - noise_scale * out
        else:
            x0 = out
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
        return x0

    # -- contract -----------------------------------------------------------------------
    def is_deterministic_step(self, t: int) -> bool:
        # sigma_t = 0: with eta = 0 at every step, and at t = 1 for any eta (a_prev = 1, so the
        # step lands on x0-hat itself).
        return int(t) in self.deterministic_steps

    def prior(self, batch_size: int, generators: Generators) -> Tensor:
        if len(generators) != batch_size:
            raise ValueError(f"prior needs one generator per sample: batch_size={batch_size}, got {len(generators)}")
        return ops.randn(generators, self.event_shape, self.device)

    def add_noise(self, x0: Tensor, t: int | Tensor, generators: Generators | None = None) -> Tensor:
        k = self.training_timestep(t, x0.shape[0])
        if generators is None:
            noise = torch.randn_like(x0)
        else:
            noise = ops.randn(generators, x0.shape[1:], x0.device).to(x0.dtype)
        # t = 0 is exactly the data (not merely 1.0 * x0 + 0.0 * noise).
        clean = (k == 0).view(-1, *([1] * (x0.dim() - 1)))
        return torch.where(clean, x0, self.q_sample(x0, k, noise))

    def denoise(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        """Tweedie x0-hat = E[x_0 | x_t] = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar)."""
        return self.predict_x0(x_t, self.training_timestep(t, x_t.shape[0]))

    def x0_estimate(self, x_t: Tensor, t: int | Tensor, denoised: Tensor) -> Tensor:
        # denoise already returns a clean object in data space.
        return denoised

    def propose(
        self,
        x_t: Tensor,
        t: int | Tensor,
        num_candidates: int,
        generators: Generators,
        denoised: Tensor | None = None,
    ) -> Tensor:
        """M DDIM draws of x_{t-1}: sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat
        + sigma z. With eta = 0, sigma = 0: nothing is drawn and all M candidates are identical
        (best-of-M selection then has nothing to choose from). At t = 1 (a_prev = 1) the
        candidates are x0-hat itself."""
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
        if isinstance(t, int) and not 1 <= t <= self.num_steps:
            raise ValueError(f"propose needs a step t in [1, num_steps={self.num_steps}], got {t}")
        batch = x_t.shape[0]
        t = self.as_time(t, batch)
        k = self.decode_timesteps[t]
        if denoised is None:
            denoised = self.predict_x0(x_t, k)
        # eps_hat is recovered from (x_t, x0_hat) rather than cached: propose then depends only
        # on its arguments, so a ``denoised`` computed elsewhere (e.g. with gradients, or edited
        # by a guidance method) is used consistently. Without clipping this is the network's
        # epsilon exactly (up to float rounding); with clipping it is the epsilon consistent
        # with the clipped x0-hat (GLIDE's convention, diffusers' use_clipped_model_output),
        # which keeps x_t = sqrt(abar) x0_hat + sqrt(1 - abar) eps_hat and the step on the DDIM
        # trajectory. 1 - abar > 0 for every t >= 1.
        eps = (x_t - per_sample(self.sqrt_alphas_cumprod[k], x_t) * denoised) / per_sample(
            self.sqrt_one_minus_alphas_cumprod[k], x_t
        )
        mean = per_sample(self.ddim_sqrt_alpha_prev[t], x_t) * denoised + per_sample(self.ddim_direction[t], x_t) * eps
        m = num_candidates
        mean = mean.unsqueeze(1).expand(batch, m, *mean.shape[1:])
        if self.eta == 0.0:
            return mean.contiguous()
        z = ops.randn(generators, (m, *x_t.shape[1:]), x_t.device).to(x_t.dtype)
        sigma = self.ddim_sigma[t].to(x_t.dtype).view(-1, 1, *([1] * (x_t.dim() - 1)))
        return mean + sigma * z

    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        """The DDPM variational lower bound on log p(x_0) in nats, summed over dimensions, (B,).

        It is the bound of the ancestral sampler on the full training grid whose reverse
        kernels have the posterior variances (eta = 1 at num_steps = train_steps), not of the
        DDIM decoder: log p(x_0) >= -L_K - sum_{k=2}^{K} L_{k-1} + log p(x_0 | x_1) with
            L_K = KL(q(x_K | x_0) || N(0, I))                       (closed form),
            L_{k-1} = 0.5 (SNR_{k-1} - SNR_k) E||x_0 - x0_hat(x_k, k)||^2,
            log p(x_0 | x_1) = log N(x_0; x0_hat(x_1, 1), beta_1 I)  (continuous density).
        The sum over k is estimated without bias from ``num_estimates`` stratified timesteps
        drawn per sample; the reconstruction term uses one draw of x_1. Network calls:
        num_estimates + 1. As a continuous density it can be positive.
        """
        if num_estimates < 1:
            raise ValueError(f"num_estimates must be >= 1, got {num_estimates}")
        batch = x0.shape[0]
        big_k = self.train_steps
        x0 = x0.float()
        dims = tuple(range(1, x0.dim()))
        device = x0.device

        # Prior term, closed form: 0.5 sum_d [abar_K x0^2 - abar_K - log(1 - abar_K)].
        a_last = self.alpha_cumprod_last
        prior_kl = 0.5 * (a_last * x0.double().pow(2) - a_last - math.log1p(-a_last)).sum(dim=dims)

        # Reconstruction term at k = 1 (posterior variance is 0 there; use beta_1 = 1 - abar_1).
        ones = torch.ones(batch, dtype=torch.long, device=device)
        beta_1 = max(self.beta_1, 1e-12)
        x1 = self.q_sample(x0, ones, ops.randn(generators, x0.shape[1:], device))
        sq = (x0 - self.predict_x0(x1, ones).float()).double().pow(2).sum(dim=dims)
        num_dims = x0[0].numel()
        recon = -0.5 * (num_dims * math.log(2 * math.pi * beta_1) + sq / beta_1)

        # Diffusion terms k = 2..K: (K - 1) * mean over stratified uniform k.
        def term(k: Tensor) -> Tensor:
            x_k = self.q_sample(x0, k, ops.randn(generators, x0.shape[1:], device))
            err = (x0 - self.predict_x0(x_k, k).float()).double().pow(2).sum(dim=dims)
            return self.kl_weight[k].double() * err

        diffusion_kl = stratified_diffusion_terms(term, generators=generators, batch_size=batch, num_train_steps=big_k,
                                                  num_estimates=num_estimates, device=device)

        return (recon - diffusion_kl - prior_kl).float()

    def training_loss(self, x0: Tensor) -> Tensor:
        """DDPM's simple loss at uniform k in 1..K (global RNG): MSE between the network's output and
        what it predicts (eps, v or x_0)."""
        k = torch.randint(1, self.train_steps + 1, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_k = self.q_sample(x0, k, noise)
        out = self.network(x_k, self.network_time(k))
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "v_prediction":
            target = per_sample(self.sqrt_alphas_cumprod[k], x0) * noise - per_sample(self.sqrt_one_minus_alphas_cumprod[k], x0) * x0
        else:
            target = x0
        return F.mse_loss(out.float(), target.float())


class DiffusersDenoiser(nn.Module):
    """A diffusers ``UNet2DModel`` as our network: ``(x_k, timestep) -> unet(x_k, timestep).sample``."""

    def __init__(self, *, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, timestep: Tensor) -> Tensor:
        return self.unet(x, timestep).sample


def scheduler_schedule(scheduler, num_inference_steps: int) -> dict:
    """GaussianDiffusion's schedule arguments from a diffusers scheduler: ``alphas_cumprod``, the inference
    timestep grid of ``set_timesteps(num_inference_steps)`` with DDIM's previous-timestep rule,
    ``final_alpha_cumprod``, ``prediction_type`` and clipping. Nothing is rebuilt from a schedule name."""
    config = scheduler.config
    scheduler.set_timesteps(num_inference_steps)
    grid = [int(k) for k in scheduler.timesteps]
    stride = config.num_train_timesteps // num_inference_steps
    final = getattr(scheduler, "final_alpha_cumprod", None)
    return dict(num_steps=num_inference_steps, alphas_cumprod=scheduler.alphas_cumprod.tolist(), timesteps=grid,
                prev_timesteps=[k - stride for k in grid], final_alpha_cumprod=1.0 if final is None else float(final),
                clip_sample=float(config.clip_sample_range) if getattr(config, "clip_sample", False) else None,
                prediction_type=config.prediction_type, timestep_input="index")


def from_diffusers(unet: nn.Module, scheduler, num_inference_steps: int, eta: float = 0.0) -> GaussianDiffusion:
    """A GaussianDiffusion that runs a diffusers UNet with its scheduler's own schedule
    (:func:`scheduler_schedule`); DDIM with ``eta``. (With clipping, the direction term uses the epsilon
    consistent with the clipped x0-hat: diffusers' ``use_clipped_model_output=True``.)"""
    sample_size = unet.config.sample_size
    size = (sample_size, sample_size) if isinstance(sample_size, int) else tuple(sample_size)
    diffusion = GaussianDiffusion(network=DiffusersDenoiser(unet=unet), event_shape=(unet.config.in_channels, *size),
                                  eta=eta, **scheduler_schedule(scheduler, num_inference_steps))
    diffusion.diffusers_scheduler = scheduler  # kept for save_pretrained (not a module: no weights)
    return diffusion


def diffusers_unet(*, unet: nn.Module, scheduler, num_inference_steps: int, eta: float = 0.0) -> GaussianDiffusion:
    """The Hydra form of :func:`from_diffusers` for a model built from config (``unet``: a
    ``diffusers.UNet2DModel`` node, ``scheduler``: a diffusers scheduler node, e.g. ``DDPMScheduler``, whose
    config DDIM reads), trained by ``train.py stage=pretrain`` like any of our networks."""
    from diffusers import DDIMScheduler

    return from_diffusers(unet, DDIMScheduler.from_config(scheduler.config), num_inference_steps=num_inference_steps,
                          eta=eta)


def save_pipeline(diffusion: GaussianDiffusion, folder) -> bool:
    """Write a diffusers-backed diffusion as a ``DDIMPipeline`` folder (``unet/``, ``scheduler/``,
    model_index.json) that diffusers' own pipelines and ``model.path=`` load; False for other networks."""
    scheduler = getattr(diffusion, "diffusers_scheduler", None)
    if scheduler is None or not isinstance(diffusion.network, DiffusersDenoiser):
        return False
    from diffusers import DDIMPipeline

    DDIMPipeline(unet=diffusion.network.unet, scheduler=scheduler).save_pretrained(folder)
    return True


def load_diffusers_folder(*, path: str, num_inference_steps: int, eta: float = 0.0) -> GaussianDiffusion:
    """A user's unconditional diffusers model from a local folder in the ``save_pretrained`` layout of
    ``DDPMPipeline`` / ``DDIMPipeline`` (``unet/`` and ``scheduler/``; a bare UNet folder with a
    ``scheduler/`` beside works too), sampled with DDIM on its scheduler's own schedule (a DDPM scheduler's
    config is read as DDIM's, as diffusers' pipelines do)."""
    from diffusers import DDIMScheduler, UNet2DModel

    from svdd_lightning.errors import CheckpointError
    from svdd_lightning.paths import resolve_path

    folder = resolve_path(path)
    if not (folder / "unet" / "config.json").is_file() or not (folder / "scheduler").is_dir():
        raise CheckpointError(f"model.path={folder} is not a diffusers pipeline folder: it needs unet/config.json and "
                              f"scheduler/ (what DDPMPipeline.save_pretrained writes).")
    unet = UNet2DModel.from_pretrained(folder / "unet")
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(folder / "scheduler"))
    return from_diffusers(unet.eval(), scheduler, num_inference_steps=num_inference_steps, eta=eta)
