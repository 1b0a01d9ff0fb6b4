"""Latent text-to-image on flow models: a Stable-Diffusion-3-layout diffusers folder as a FlowDiffusion.

An SD3 / SD3.5 folder (what ``StableDiffusion3Pipeline.save_pretrained`` writes: ``transformer/``, ``vae/``,
``text_encoder/`` + ``tokenizer/`` and ``text_encoder_2/`` + ``tokenizer_2/`` (the two CLIPs), optionally
``text_encoder_3/`` + ``tokenizer_3/`` (T5), ``scheduler/`` (a FlowMatchEulerDiscreteScheduler)) decodes as the
SD 1.x folders of svdd_lightning/diffusion/latent.py do: the states are latents, rewards see VAE-decoded pixels,
DPS differentiates through the VAE. What differs:

- the prompt is encoded by the pipeline's own ``encode_prompt`` (both CLIPs' hidden states and pooled vectors, and
  T5's, or zeros in T5's place when the folder has no T5, as SD3 allows), once per decode;
- the network is the ``SD3Transformer2DModel``, conditioned on those embeddings, predicting the flow's velocity;
  classifier-free guidance combines v_u + g (v_c - v_u) when guidance_scale > 1, as StableDiffusion3Pipeline does;
- the grid is the folder's scheduler's (its shift, and with ``use_dynamic_shifting`` the mu the pipeline computes
  from the image size), and the steps are FlowDiffusion's: the scheduler's Euler ODE at stochasticity 0, the SDE with
  the ODE's marginals above 0 (what search needs: with the ODE, candidates of one state coincide);
- latents decode as z / scaling_factor + shift_factor.

Flux folders (``FluxPipeline``) are refused with what is missing (:func:`refuse_flux`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from svdd_lightning.diffusion.flow import FlowDiffusion, flow_schedule
from svdd_lightning.diffusion.latent import VaeLatents
from svdd_lightning.distinct import in_chunks

SD3_FOLDERS = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler")
SD3_OPTIONAL = ("text_encoder_3", "tokenizer_3", "image_encoder", "feature_extractor")


class TextConditionedTransformer(nn.Module):
    """An ``SD3Transformer2DModel`` with a fixed prompt: ``(latents, timestep) -> velocity``, with classifier-free
    guidance when ``guidance_scale > 1`` (StableDiffusion3Pipeline's rule)."""

    def __init__(self, *, transformer: nn.Module, prompt_embeds: Tensor, pooled_embeds: Tensor,
                 negative_embeds: Tensor | None = None, negative_pooled_embeds: Tensor | None = None,
                 guidance_scale: float = 7.0, max_batch: int | None = None) -> None:
        super().__init__()
        self.transformer = transformer
        self.guidance_scale = float(guidance_scale)
        self.max_batch = max_batch
        if self.guided and (negative_embeds is None or negative_pooled_embeds is None):
            raise ValueError("guidance_scale > 1 needs the negative prompt's embeddings")
        # Buffers: they follow the model to its device and are recomputed from the prompt, never saved.
        self.register_buffer("prompt_embeds", prompt_embeds, persistent=False)
        self.register_buffer("pooled_embeds", pooled_embeds, persistent=False)
        self.register_buffer("negative_embeds", negative_embeds, persistent=False)
        self.register_buffer("negative_pooled_embeds", negative_pooled_embeds, persistent=False)

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0

    def forward(self, x: Tensor, timestep: Tensor) -> Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        return in_chunks(lambda r: self._call(x[r], timestep[r]), rows, self.max_batch)

    def _velocity(self, x: Tensor, timestep: Tensor, embeds: Tensor, pooled: Tensor) -> Tensor:
        return self.transformer(hidden_states=x, timestep=timestep, encoder_hidden_states=embeds,
                                pooled_projections=pooled, return_dict=False)[0]

    def _call(self, x: Tensor, timestep: Tensor) -> Tensor:
        n = x.shape[0]
        cond, pooled = self.prompt_embeds.expand(n, -1, -1), self.pooled_embeds.expand(n, -1)
        if not self.guided:
            return self._velocity(x, timestep, cond, pooled)
        embeds = torch.cat([self.negative_embeds.expand(n, -1, -1), cond])
        pooled = torch.cat([self.negative_pooled_embeds.expand(n, -1), pooled])
        uncond, text = self._velocity(torch.cat([x, x]), torch.cat([timestep, timestep]), embeds, pooled).chunk(2)
        return uncond + self.guidance_scale * (text - uncond)


class LatentFlowDiffusion(VaeLatents, FlowDiffusion):
    """A rectified flow on VAE latents with a text-conditioned transformer (see the module docstring)."""

    def __init__(self, *, network: TextConditionedTransformer, vae: nn.Module, event_shape,
                 stochasticity: float = 1.0, diffusion_coefficient: str = "sigma", max_batch: int | None = None,
                 **schedule) -> None:
        super().__init__(network=network, event_shape=event_shape, stochasticity=stochasticity,
                         diffusion_coefficient=diffusion_coefficient, **schedule)
        self.attach_vae(vae, max_batch)


def pipeline_class_name(folder: Path) -> str:
    """The pipeline class a diffusers folder names in its model_index.json ('' when it has none)."""
    index = folder / "model_index.json"
    if not index.is_file():
        return ""
    try:
        return str(json.loads(index.read_text()).get("_class_name", ""))
    except (OSError, ValueError):
        return ""


def refuse_flux(folder: Path) -> None:
    """Flux folders share SD3's VAE scaling and flow-matching scheduler but not its transformer's interface; this
    adapter does not cover them, and says what a Flux adapter would have to add."""
    from svdd_lightning.errors import CheckpointError

    name = pipeline_class_name(folder)
    is_flux = name.startswith("Flux")
    config = folder / "transformer" / "config.json"
    if not is_flux and config.is_file():
        try:
            is_flux = str(json.loads(config.read_text()).get("_class_name", "")).startswith("Flux")
        except (OSError, ValueError):
            pass
    if is_flux:
        raise CheckpointError(
            f"model.path={folder} is a Flux folder ({name or 'FluxTransformer2DModel'}), which domain=latent_image "
            f"does not load yet. What the Stable Diffusion 3 adapter lacks for it: Flux's transformer takes latents "
            f"packed into 2x2 patches as a token sequence with image and text position ids (img_ids, txt_ids), "
            f"its timestep as a fraction (sigma, not sigma x 1000), and, for FLUX.1-dev, the guidance scale as an "
            f"input (guidance distillation) instead of two classifier-free branches; its prompt needs the T5 encoder "
            f"(not optional as in SD3); and its pipeline decodes on its own sigma grid (linspace(1, 1/N, N), always "
            f"dynamically shifted). Use a Stable Diffusion 3 / 3.5 folder (transformer/ holding an "
            f"SD3Transformer2DModel), or a Stable Diffusion 1.x/2.x folder (unet/).")


def load_stable_diffusion_3(*, folder: Path, prompt: str, num_inference_steps: int, guidance_scale: float = 7.0,
                            negative_prompt: str = "", stochasticity: float = 1.0,
                            diffusion_coefficient: str = "sigma", mu: float | None = None,
                            height: int | None = None, width: int | None = None,
                            max_batch: int | None = None) -> LatentFlowDiffusion:
    """An SD3-layout folder as a :class:`LatentFlowDiffusion` for one prompt, read with
    ``StableDiffusion3Pipeline.from_pretrained(local folder)``; its text encoders are used once, for the prompt,
    and dropped. ``height``/``width`` default to the transformer's sample size times the VAE's factor; ``mu``
    (dynamic shifting) defaults to what the pipeline computes from them."""
    from diffusers import StableDiffusion3Pipeline
    from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift

    from svdd_lightning.errors import CheckpointError, ConfigError

    missing = [name for name in SD3_FOLDERS if not (folder / name).is_dir()]
    if missing:
        raise CheckpointError(f"model.path={folder} is not a Stable Diffusion 3 folder: it lacks "
                              f"{', '.join(f'{name}/' for name in missing)} (it needs {', '.join(SD3_FOLDERS)}, and "
                              f"text_encoder_3/ and tokenizer_3/ for T5 if it has them; StableDiffusion3Pipeline."
                              f"save_pretrained writes them).")
    try:
        # Optional parts the folder does not hold (T5, IP-Adapter's image encoder) are passed as None: diffusers does
        # not read a null model_index entry as "absent" by itself.
        absent = {name: None for name in SD3_OPTIONAL if not (folder / name).is_dir()}
        pipe = StableDiffusion3Pipeline.from_pretrained(folder, **absent)
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"model.path={folder}: StableDiffusion3Pipeline could not load it ({error}). Check the "
                              f"folder is a complete save_pretrained folder.") from error
    guided = guidance_scale > 1.0
    with torch.no_grad():
        embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
            prompt=prompt, prompt_2=None, prompt_3=None, device=torch.device("cpu"),
            do_classifier_free_guidance=guided, negative_prompt=negative_prompt)
    factor, patch = pipe.vae_scale_factor, pipe.patch_size
    height = int(height or pipe.default_sample_size * factor)
    width = int(width or pipe.default_sample_size * factor)
    if height % (factor * patch) or width % (factor * patch):
        raise ConfigError(f"height={height} and width={width} must be multiples of {factor * patch} (the VAE's factor "
                          f"{factor} times the transformer's patch size {patch}).")
    scheduler = pipe.scheduler
    if mu is None and scheduler.config.get("use_dynamic_shifting", False):
        # As StableDiffusion3Pipeline.__call__ computes it: from the number of transformer tokens.
        tokens = (height // factor // patch) * (width // factor // patch)
        mu = calculate_shift(tokens, scheduler.config.get("base_image_seq_len", 256),
                             scheduler.config.get("max_image_seq_len", 4096), scheduler.config.get("base_shift", 0.5),
                             scheduler.config.get("max_shift", 1.16))
    network = TextConditionedTransformer(transformer=pipe.transformer.eval(), prompt_embeds=embeds,
                                         pooled_embeds=pooled, negative_embeds=negative,
                                         negative_pooled_embeds=negative_pooled, guidance_scale=guidance_scale)
    diffusion = LatentFlowDiffusion(
        network=network, vae=pipe.vae.eval(), stochasticity=stochasticity,
        diffusion_coefficient=diffusion_coefficient, max_batch=max_batch,
        event_shape=(pipe.transformer.config.in_channels, height // factor, width // factor),
        **flow_schedule(scheduler, num_inference_steps, mu))
    diffusion.flow_scheduler = scheduler
    diffusion.prompt = prompt
    return diffusion
