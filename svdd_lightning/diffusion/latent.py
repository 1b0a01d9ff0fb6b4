"""Latent text-to-image diffusion: a Stable-Diffusion-layout diffusers folder as a Diffusion.

The states are latents (C, H / f, W / f); every decoder proposes, scores and keeps latents as it does pixels.
What is not a state is data: ``to_data`` decodes clean latents through the VAE into RGB pixels in [-1, 1]
(the image domain's tensors), so

- rewards see pixels: decode.py wraps the reward with :class:`~svdd_lightning.rewards.latent.DecodedReward`,
  and the posterior-mean value r(x0_hat) decodes Tweedie's latent x0-hat through the VAE before scoring;
- DPS backpropagates a differentiable pixel reward through the VAE decoder and the UNet;
- output files hold the decoded images.

The text prompt conditions every UNet call; classifier-free guidance (``guidance_scale`` > 1) runs the
conditional and unconditional (empty prompt) branches in one call on a doubled batch and combines
eps_u + g (eps_c - eps_u), as diffusers' StableDiffusionPipeline does. The schedule is the folder's
scheduler's (``scheduler_schedule``), sampled with DDIM. ``max_batch`` caps the latents per UNet and VAE
call (decode.py sets it from ``decoder.max_batch``): peak memory then stops growing with the number of
candidates; the numbers are those of one call.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from svdd_lightning.diffusion.gaussian import GaussianDiffusion, scheduler_schedule
from svdd_lightning.ops import Generators
from svdd_lightning.distinct import in_chunks

SD_FOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@torch.no_grad()
def encode_prompt(text_encoder: nn.Module, tokenizer, prompt: str) -> Tensor:
    """The text encoder's last hidden states of one prompt (1, tokens, D), padded to the tokenizer's length
    as StableDiffusionPipeline encodes it."""
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    device = next(text_encoder.parameters()).device
    return text_encoder(ids.to(device))[0]


class TextConditionedUNet(nn.Module):
    """A ``UNet2DConditionModel`` with a fixed prompt: ``(latents, timestep) -> eps`` (or v), with
    classifier-free guidance when ``guidance_scale != 1``."""

    def __init__(self, *, unet: nn.Module, prompt_embeds: Tensor, negative_embeds: Tensor,
                 guidance_scale: float = 7.5, max_batch: int | None = None) -> None:
        super().__init__()
        self.unet = unet
        self.guidance_scale = float(guidance_scale)
        self.max_batch = max_batch
        # Buffers: they follow the model to its device and are recomputed from the prompt, never saved.
        self.register_buffer("prompt_embeds", prompt_embeds, persistent=False)
        self.register_buffer("negative_embeds", negative_embeds, persistent=False)

    @property
    def guided(self) -> bool:
        return self.guidance_scale != 1.0

    def forward(self, x: Tensor, timestep: Tensor) -> Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        return in_chunks(lambda r: self._call(x[r], timestep[r]), rows, self.max_batch)

    def _call(self, x: Tensor, timestep: Tensor) -> Tensor:
        n = x.shape[0]
        cond = self.prompt_embeds.expand(n, -1, -1)
        if not self.guided:
            return self.unet(x, timestep, encoder_hidden_states=cond).sample
        both = torch.cat([self.negative_embeds.expand(n, -1, -1), cond])
        out = self.unet(torch.cat([x, x]), torch.cat([timestep, timestep]), encoder_hidden_states=both).sample
        uncond, text = out.chunk(2)
        return uncond + self.guidance_scale * (text - uncond)


class VaeLatents:
    """The part of a latent diffusion that is about its VAE (mixed in before GaussianDiffusion or FlowDiffusion):
    states are scaled latents, ``to_data`` decodes them to pixels, ``encode_data`` encodes pixels back, and
    ``max_batch`` caps the latents per network and VAE call. The scaling is the VAE config's: latents =
    (z - shift_factor) * scaling_factor (shift_factor: SD3 and Flux VAEs; none for SD 1.x)."""

    states_are_data = False

    def attach_vae(self, vae: nn.Module, max_batch: int | None) -> None:
        self.vae = vae
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)
        self.max_batch = max_batch

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    @max_batch.setter
    def max_batch(self, value: int | None) -> None:
        if value is not None and int(value) < 1:
            raise ValueError(f"max_batch must be >= 1 or null (no cap), got {value}")
        self._max_batch = None if value is None else int(value)
        self.network.max_batch = self._max_batch

    def to_data(self, x0: Tensor) -> Tensor:
        """VAE-decoded RGB pixels in [-1, 1], (B, 3, H, W); differentiable (DPS)."""
        def decode(z: Tensor) -> Tensor:
            z = z / self.scaling_factor
            if self.shift_factor:  # skipped, not added as 0, so that SD 1.x latents decode bit for bit as before
                z = z + self.shift_factor
            return self.vae.decode(z).sample.clamp(-1.0, 1.0)

        return in_chunks(decode, x0, self.max_batch)

    def encode_data(self, images: Tensor) -> Tensor:
        """Pixels in [-1, 1] -> latents (the posterior mean of the VAE encoder, shifted and scaled)."""
        def encode(x: Tensor) -> Tensor:
            z = self.vae.encode(x).latent_dist.mean
            if self.shift_factor:
                z = z - self.shift_factor
            return z * self.scaling_factor

        return in_chunks(encode, images, self.max_batch)

    def log_likelihood(self, x0: Tensor, generators: Generators, num_estimates: int = 16) -> Tensor:
        """The ELBO of the latents of images ``x0`` (pixels, as the samples leave), in nats per latent."""
        return super().log_likelihood(self.encode_data(x0), generators, num_estimates)


class LatentDiffusion(VaeLatents, GaussianDiffusion):
    """Gaussian diffusion on VAE latents with a text-conditioned UNet (see the module docstring)."""

    def __init__(self, *, network: TextConditionedUNet, vae: nn.Module, event_shape, eta: float = 1.0,
                 max_batch: int | None = None, **schedule) -> None:
        super().__init__(network=network, event_shape=event_shape, eta=eta, **schedule)
        self.attach_vae(vae, max_batch)


def load_stable_diffusion(*, path: str, prompt: str, num_inference_steps: int, guidance_scale: float = 7.5,
                          negative_prompt: str = "", eta: float = 1.0, stochasticity: float = 1.0,
                          diffusion_coefficient: str = "sigma", mu: float | None = None, height: int | None = None,
                          width: int | None = None, max_batch: int | None = None) -> LatentDiffusion:
    """A Stable-Diffusion-layout folder (``unet``, ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler``:
    what ``StableDiffusionPipeline.save_pretrained`` writes) as a :class:`LatentDiffusion` for one prompt,
    each part read with ``from_pretrained(local folder)``; the scheduler's config is read as DDIM's.
    ``height``/``width`` default to the UNet's sample size times the VAE's downsampling factor.

    A folder with ``transformer/`` instead of ``unet/`` is a flow model (Stable Diffusion 3 / 3.5) and loads as a
    LatentFlowDiffusion (svdd_lightning/diffusion/latent_flow.py) with ``stochasticity``, ``diffusion_coefficient``
    and ``mu``; ``eta`` is DDIM's and applies to ``unet/`` folders only, the other three to flow folders only."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    from svdd_lightning.errors import CheckpointError, ConfigError
    from svdd_lightning.paths import resolve_path

    if not path:
        raise ConfigError("domain=latent_image needs model.path=DIR, a Stable Diffusion folder (unet/, vae/, "
                          "text_encoder/, tokenizer/, scheduler/: what StableDiffusionPipeline.save_pretrained "
                          "writes).")
    folder = resolve_path(path)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(f"prompt={prompt!r}: domain=latent_image needs a text prompt, e.g. prompt='a red square' "
                          f"(or prompt=FILE, one prompt per line).")
    if guidance_scale < 0:
        raise ConfigError(f"guidance_scale={guidance_scale}: use 1 for no guidance or more (7.5 is SD's default).")
    if (folder / "transformer").is_dir() and not (folder / "unet").is_dir():
        from svdd_lightning.diffusion.latent_flow import load_stable_diffusion_3, refuse_flux

        refuse_flux(folder)
        return load_stable_diffusion_3(folder=folder, prompt=prompt, num_inference_steps=num_inference_steps,
                                       guidance_scale=guidance_scale, negative_prompt=negative_prompt,
                                       stochasticity=stochasticity, diffusion_coefficient=diffusion_coefficient,
                                       mu=mu, height=height, width=width, max_batch=max_batch)
    missing = [name for name in SD_FOLDERS if not (folder / name).is_dir()]
    if missing:
        lacking = ", ".join(f"{name}/" for name in missing)
        raise CheckpointError(f"model.path={folder} is not a Stable Diffusion folder: it lacks {lacking} "
                              f"(it needs {', '.join(SD_FOLDERS)}; StableDiffusionPipeline.save_pretrained writes "
                              f"them), or, for a Stable Diffusion 3 folder, transformer/ in place of unet/.")
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
    vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(folder / "scheduler"))
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    height = int(height or unet.config.sample_size * factor)
    width = int(width or unet.config.sample_size * factor)
    if height % factor or width % factor:
        raise ConfigError(f"height={height} and width={width} must be multiples of the VAE's factor {factor}.")
    network = TextConditionedUNet(unet=unet, prompt_embeds=encode_prompt(text_encoder, tokenizer, prompt),
                                  negative_embeds=encode_prompt(text_encoder, tokenizer, negative_prompt),
                                  guidance_scale=guidance_scale)
    diffusion = LatentDiffusion(network=network, vae=vae,
                                event_shape=(unet.config.in_channels, height // factor, width // factor), eta=eta,
                                max_batch=max_batch, **scheduler_schedule(scheduler, num_inference_steps))
    diffusion.prompt = prompt
    return diffusion


def read_prompts(prompt: str) -> list[str]:
    """``prompt=`` as a list: the lines of a file (blank lines and ``#`` comments skipped) when it names one,
    else the prompt itself."""
    from svdd_lightning.errors import ConfigError

    path = Path(str(prompt)).expanduser()
    if not path.is_file():
        return [str(prompt)]
    prompts = [line.strip() for line in path.read_text().splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise ConfigError(f"prompt={path} is a file with no prompts; write one prompt per line.")
    return prompts
