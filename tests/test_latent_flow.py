"""domain=latent_image on a Stable-Diffusion-3-layout folder (a tiny one with random weights, saved and loaded back
from disk, no T5): ODE sampling agrees with diffusers' StableDiffusion3Pipeline fed the same latents, with and
without guidance, and differs under a wrong shift or a wrong velocity sign; every decoder decodes a prompt with
stochastic steps; a folder without noise, and a Flux folder, are clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from svdd_lightning import ops  # noqa: E402
from svdd_lightning.diffusion.flow import flow_schedule  # noqa: E402
from svdd_lightning.diffusion.latent import load_stable_diffusion  # noqa: E402
from svdd_lightning.diffusion.latent_flow import LatentFlowDiffusion  # noqa: E402
from svdd_lightning.errors import CheckpointError, ConfigError  # noqa: E402
# The SD 1.x tests' helpers: the tiny aesthetic reward's files, and our images of a diffusion (BATCH, seed 7).
from tests.test_latent_image import BATCH, PROMPT, STEPS, aesthetic_files, our_images  # noqa: E402, F401
from tests.tiny_pipelines import tiny_stable_diffusion_3  # noqa: E402


@pytest.fixture(scope="module")
def sd3_folder(tmp_path_factory):
    return tiny_stable_diffusion_3(tmp_path_factory.mktemp("tiny-sd3") / "sd3")


def pipeline_images(folder, latents, guidance_scale):
    pipe = diffusers.StableDiffusion3Pipeline.from_pretrained(folder, text_encoder_3=None, tokenizer_3=None,
                                                              image_encoder=None, feature_extractor=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe([PROMPT] * BATCH, latents=latents, num_inference_steps=STEPS, guidance_scale=guidance_scale,
                height=16, width=16, output_type="pt").images  # (B, 3, H, W) in [0, 1]


class FlippedVelocity(torch.nn.Module):
    """The negative control: the velocity read with the wrong sign (x_0 - eps)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x, timestep):
        return -self.network(x, timestep)


@pytest.mark.parametrize("guidance_scale", [1.0, 4.0])
def test_ode_sampling_matches_stable_diffusion_3_pipeline(sd3_folder, guidance_scale):
    """Same initial latents, stochasticity 0 (the scheduler's Euler ODE): the same images within 1e-4 (measured
    about 8e-7), unguided and with classifier-free guidance 4; a wrong shift or a flipped velocity differs."""
    diffusion = load_stable_diffusion(path=str(sd3_folder), prompt=PROMPT, num_inference_steps=STEPS,
                                      guidance_scale=guidance_scale, stochasticity=0.0).eval()
    assert isinstance(diffusion, LatentFlowDiffusion) and diffusion.event_shape == (4, 8, 8)
    assert diffusion.shift_factor == pytest.approx(0.0609)
    ours = (our_images(diffusion) / 2 + 0.5).clamp(0, 1)
    theirs = pipeline_images(sd3_folder, diffusion.prior(BATCH, ops.make_generators(7, range(BATCH))),
                             guidance_scale)
    assert ours.shape == theirs.shape == (BATCH, 3, 16, 16)
    assert (ours - theirs).abs().max() < 1e-4

    # The comparison can fail: the grid of another shift, or the velocity's sign flipped, give other images.
    shifted = diffusers.FlowMatchEulerDiscreteScheduler(shift=1.0)
    wrong_grid = LatentFlowDiffusion(
        network=diffusion.network, vae=diffusion.vae, event_shape=diffusion.event_shape, stochasticity=0.0,
        **flow_schedule(shifted, STEPS))
    assert ((our_images(wrong_grid) / 2 + 0.5).clamp(0, 1) - theirs).abs().max() > 1e-3
    diffusion.network = FlippedVelocity(diffusion.network)
    assert ((our_images(diffusion) / 2 + 0.5).clamp(0, 1) - theirs).abs().max() > 1e-3


def test_dynamic_shifting_uses_the_pipelines_mu(tmp_path):
    """A scheduler with use_dynamic_shifting: mu computed from the image size as the pipeline computes it."""
    folder = tiny_stable_diffusion_3(tmp_path / "dynamic", dynamic_shifting=True)
    diffusion = load_stable_diffusion(path=str(folder), prompt=PROMPT, num_inference_steps=STEPS,
                                      guidance_scale=1.0, stochasticity=0.0).eval()
    theirs = pipeline_images(folder, diffusion.prior(BATCH, ops.make_generators(7, range(BATCH))), 1.0)
    assert ((our_images(diffusion) / 2 + 0.5).clamp(0, 1) - theirs).abs().max() < 1e-4


DECODERS = ["pretrained", "best_of_n", "svdd_pm", "svdd_mc", "smc", "svdd_r", "svdd_smc", "beam", "tree",
            "tree_search", "dps"]


def run(out, folder, decoder, *extra):
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode

    cfg = compose_decode("domain=latent_image", f"model.path={folder}", f"prompt={PROMPT}", f"decoder={decoder}",
                         f"steps={STEPS}", "num_samples=4", "batch_size=4", "diffusion.stochasticity=1",
                         "trainer.enable_progress_bar=false", f"output_dir={out}", *extra)
    return run_decode(cfg)


LATENT_VALUE = ("value_network={_target_: svdd_lightning.networks.image_value.ImageValueNet, in_channels: 4, "
                "channels: 8, time_dim: 16}")


@pytest.fixture(scope="module")
def latent_value(tmp_path_factory, sd3_folder):
    """train.py stage=value on the SD3 folder: rollouts of the flow, rewards of their decoded pixels, a tiny value
    network regressed on the latents (what svdd_mc needs; a few steps, random quality)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from svdd_lightning.paths import CONFIG_DIR
    from svdd_lightning.tasks.train import run_value

    out = tmp_path_factory.mktemp("latent-value")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "stage=value", "domain=latent_image", f"model.path={sd3_folder}", f"prompt={PROMPT}", f"steps={STEPS}",
            LATENT_VALUE, "value_training.num_rollouts=8", "value_training.rollout_batch_size=8",
            "value_training.batch_size=16", "trainer.max_steps=2", "value_training.val_check_interval=1",
            "logger=none", "trainer.enable_progress_bar=false", f"output_dir={out}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
    return run_value(cfg, out)


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_decoder_decodes_a_prompt_on_a_flow_model(tmp_path, sd3_folder, aesthetic_files, decoder, request):
    """decode.py domain=latent_image model.path=<SD3 folder> prompt=... decoder=D diffusion.stochasticity=1 writes
    the PNG grid, summary.json and the W&B image table (offline run)."""
    from callbacks.wandb_offline import read_history

    clip, head = aesthetic_files
    extra = {"dps": ["reward=aesthetic", f"reward.path={clip}", f"reward.head={head}"]}.get(decoder, [])
    if decoder == "svdd_mc":
        extra += [LATENT_VALUE, f"value.checkpoint={request.getfixturevalue('latent_value')}"]
    if decoder not in ("pretrained", "dps", "smc"):
        extra.append("decoder.num_candidates=2")
    out = tmp_path / decoder
    summary = run(out, sd3_folder, decoder, "logger=wandb", *extra)
    assert summary["domain"] == "latent_image" and summary["num_samples"] == 4
    assert json.loads((out / "summary.json").read_text())["decoder"] == decoder
    samples = torch.from_numpy(np.load(out / "samples.npy"))
    assert samples.shape == (4, 3, 16, 16) and samples.abs().max() <= 1.0  # decoded RGB pixels, not latents
    assert (out / "samples.png").stat().st_size > 500 and (out / "reward_hist.png").is_file()
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    table = next(r for r in read_history(runs[0]) if "samples/nrows" in r)
    assert table["samples/nrows"] == 4


def test_search_without_noise_is_a_clear_error(tmp_path, sd3_folder):
    with pytest.raises(ConfigError, match="diffusion.stochasticity"):
        run(tmp_path / "ode", sd3_folder, "svdd_pm", "diffusion.stochasticity=0", "logger=none")
    assert not (tmp_path / "ode" / "summary.json").exists()


def test_flux_and_incomplete_folders_are_clear_errors(tmp_path, sd3_folder):
    flux = tmp_path / "flux"
    (flux / "transformer").mkdir(parents=True)
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(CheckpointError, match="Flux folder.*packed into 2x2 patches.*T5"):
        load_stable_diffusion(path=str(flux), prompt=PROMPT, num_inference_steps=STEPS)
    partial = tmp_path / "partial"
    (partial / "transformer").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="not a Stable Diffusion 3 folder: it lacks vae/"):
        load_stable_diffusion(path=str(partial), prompt=PROMPT, num_inference_steps=STEPS)
