"""Tiny diffusers / transformers models with random weights, built from small configs and saved in the layouts
users' real models come in (as diffusers' own tests do): no weights can be downloaded here."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_TOKENS = 16  # prompt length of the tiny tokenizer


def tiny_tokenizer():
    """A CLIP tokenizer over single bytes (no merges): every prompt character becomes a token."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in bytes_to_unicode().values():
        vocab.setdefault(char, len(vocab))
    for char in bytes_to_unicode().values():
        vocab.setdefault(char + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TINY_TOKENS)


def tiny_stable_diffusion(folder: Path, *, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """A Stable-Diffusion-layout folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/): latents 4 x 8 x 8,
    images 3 x 16 x 16, SD 1.5's scheduler settings."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=516, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=TINY_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type)
    pipeline = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(),
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return Path(folder)


def tiny_aesthetic(folder: Path, *, seed: int = 0, mlp: bool = True) -> tuple[Path, Path]:
    """(a CLIP vision model folder, an aesthetic head .pth in the LAION layout) with random weights."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    folder = Path(folder)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, projection_dim=12))
    encoder.save_pretrained(folder / "clip")
    if mlp:  # the improved predictor's numbering: layers.0, 2, 4, 6, 7 (dropout between)
        widths = [(12, 20), (20, 8), (8, 6), (6, 4), (4, 1)]
        state = {}
        for index, (n_in, n_out) in zip((0, 2, 4, 6, 7), widths):
            state[f"layers.{index}.weight"] = torch.randn(n_out, n_in) / n_in**0.5
            state[f"layers.{index}.bias"] = torch.randn(n_out) * 0.1
    else:
        state = {"weight": torch.randn(1, 12) / 12**0.5, "bias": torch.zeros(1)}
    torch.save(state, folder / "head.pth")
    return folder / "clip", folder / "head.pth"


def tiny_stable_diffusion_3(folder: Path, *, seed: int = 0, shift: float = 3.0, dynamic_shifting: bool = False) -> Path:
    """A Stable-Diffusion-3-layout folder (transformer/, vae/, text_encoder/ + tokenizer/, text_encoder_2/ +
    tokenizer_2/, scheduler/; no T5, as SD3 allows): latents 4 x 8 x 8 in 2 x 2 patches, images 3 x 16 x 16, a VAE
    with a shift factor, SD3's scheduler settings (shift 3) unless told otherwise."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=32,
        pos_embed_max_size=16)

    def clip():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=516, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=TINY_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=16))

    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=16, scaling_factor=1.5035, shift_factor=0.0609)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift,
                                                use_dynamic_shifting=dynamic_shifting)
    pipeline = StableDiffusion3Pipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=clip(),
                                        tokenizer=tiny_tokenizer(), text_encoder_2=clip(), tokenizer_2=tiny_tokenizer(),
                                        text_encoder_3=None, tokenizer_3=None)
    pipeline.save_pretrained(folder)
    return Path(folder)
