"""domain=latent_image: a Stable-Diffusion-layout folder (a tiny one with random weights, saved and loaded back
from disk) decodes with every decoder; pre-trained sampling agrees with diffusers' StableDiffusionPipeline fed
the same latents; rewards score decoded pixels; the aesthetic reward reads LAION's head layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from svdd_lightning import ops  # noqa: E402
from svdd_lightning.decoders.pretrained import PretrainedSampler  # noqa: E402
from svdd_lightning.diffusion.latent import load_stable_diffusion  # noqa: E402
from svdd_lightning.errors import CheckpointError, ConfigError  # noqa: E402
from tests.tiny_pipelines import tiny_aesthetic, tiny_stable_diffusion  # noqa: E402

STEPS = 6
BATCH = 3
PROMPT = "a red square"


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd") / "sd")


@pytest.fixture(scope="module")
def aesthetic_files(tmp_path_factory):
    return tiny_aesthetic(tmp_path_factory.mktemp("tiny-aesthetic"))


class NoReward(torch.nn.Module):
    name = "none"
    is_differentiable = False

    def forward(self, x0):
        return torch.zeros(x0.shape[0])


def our_images(diffusion, seed=7):
    out = PretrainedSampler(reward=NoReward())(diffusion, BATCH, ops.make_generators(seed, range(BATCH)))
    return diffusion.to_data(out.samples)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_pretrained_sampling_matches_stable_diffusion_pipeline(tmp_path, prediction_type):
    """Same initial latents, DDIM eta = 0, classifier-free guidance 3: the same images within 1e-4."""
    folder = tiny_stable_diffusion(tmp_path / prediction_type, prediction_type=prediction_type)
    diffusion = load_stable_diffusion(path=str(folder), prompt=PROMPT, num_inference_steps=STEPS, guidance_scale=3.0,
                                      eta=0.0).eval()
    assert diffusion.event_shape == (4, 8, 8) and diffusion.prediction_type == prediction_type
    ours = our_images(diffusion)
    latents = diffusion.prior(BATCH, ops.make_generators(7, range(BATCH)))

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(folder, safety_checker=None,
                                                             requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe([PROMPT] * BATCH, latents=latents, num_inference_steps=STEPS, guidance_scale=3.0, eta=0.0,
                  height=16, width=16, output_type="pt").images  # (B, 3, H, W) in [0, 1]
    assert ours.shape == theirs.shape == (BATCH, 3, 16, 16)
    assert ((ours / 2 + 0.5).clamp(0, 1) - theirs).abs().max() < 1e-4

    # The comparison can fail: without guidance (or with another prompt) the images differ.
    unguided = load_stable_diffusion(path=str(folder), prompt=PROMPT, num_inference_steps=STEPS, guidance_scale=1.0,
                                     eta=0.0).eval()
    assert ((our_images(unguided) / 2 + 0.5).clamp(0, 1) - theirs).abs().max() > 1e-3
    other = load_stable_diffusion(path=str(folder), prompt="a blue circle", num_inference_steps=STEPS,
                                  guidance_scale=3.0, eta=0.0).eval()
    assert (our_images(other) - ours).abs().max() > 1e-4


def test_max_batch_chunks_unet_and_vae_calls_without_changing_samples(sd_folder):
    whole = load_stable_diffusion(path=str(sd_folder), prompt=PROMPT, num_inference_steps=STEPS).eval()
    chunked = load_stable_diffusion(path=str(sd_folder), prompt=PROMPT, num_inference_steps=STEPS, max_batch=2).eval()
    calls = []
    chunked.network.unet.register_forward_hook(lambda _m, args, _o: calls.append(args[0].shape[0]))
    assert torch.allclose(our_images(whole), our_images(chunked), atol=1e-5)
    assert calls and max(calls) == 2 * 2  # two rows per chunk, doubled for classifier-free guidance


def run(out, sd_folder, decoder, *extra):
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode

    cfg = compose_decode("domain=latent_image", f"model.path={sd_folder}", f"prompt={PROMPT}", f"decoder={decoder}",
                         f"steps={STEPS}", "num_samples=4", "batch_size=4", "decoder.num_candidates=2"
                         if decoder not in ("pretrained", "dps", "smc") else "seed=0",
                         "trainer.enable_progress_bar=false", f"output_dir={out}", *extra)
    return run_decode(cfg)


@pytest.mark.parametrize("decoder", ["pretrained", "best_of_n", "svdd_pm", "smc", "svdd_r", "dps"])
def test_every_decoder_decodes_a_prompt(tmp_path, sd_folder, aesthetic_files, decoder):
    """decode.py domain=latent_image model.path=DIR prompt=... decoder=D writes the PNG grid, summary.json and
    the W&B image table (offline run); DPS follows the aesthetic reward's gradient through the VAE decoder."""
    from callbacks.wandb_offline import read_history

    clip, head = aesthetic_files
    reward = ["reward=aesthetic", f"reward.path={clip}", f"reward.head={head}"] if decoder == "dps" else []
    out = tmp_path / decoder
    summary = run(out, sd_folder, decoder, "logger=wandb", *reward)
    assert summary["domain"] == "latent_image" and summary["num_samples"] == 4
    assert summary["reward"] == ("aesthetic" if decoder == "dps" else "compressibility")
    assert json.loads((out / "summary.json").read_text())["decoder"] == decoder
    samples = torch.from_numpy(np.load(out / "samples.npy"))
    assert samples.shape == (4, 3, 16, 16) and samples.abs().max() <= 1.0  # decoded RGB pixels, not latents
    assert (out / "samples.png").stat().st_size > 1000 and (out / "reward_hist.png").is_file()
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    table = next(r for r in read_history(runs[0]) if "samples/nrows" in r)
    assert table["samples/nrows"] == 4


def test_rewards_score_the_decoded_pixels(tmp_path, sd_folder):
    """The compressibility of a decode equals the JPEG size of the decoded images written to samples.npy."""
    import csv

    import numpy as np

    from svdd_lightning.domains.images.domain import to_uint8
    from svdd_lightning.rewards.image import jpeg_bytes

    out = tmp_path / "pm"
    summary = run(out, sd_folder, "svdd_pm", "logger=none")
    images = torch.from_numpy(np.load(out / "samples.npy"))
    expected = [-jpeg_bytes(pixels) / 1000 for pixels in to_uint8(images)]
    rows = list(csv.DictReader(open(out / "samples.csv")))
    assert [float(r["reward"]) for r in rows] == pytest.approx(expected, abs=1e-6)
    assert summary["calls_per_sample"]["reward"] > 1  # the posterior-mean value scored decoded x0-hats


@pytest.mark.parametrize("mlp", [True, False])
def test_aesthetic_reward_reads_laion_heads_and_is_differentiable(tmp_path, mlp):
    from svdd_lightning.rewards.aesthetic import AestheticReward

    clip, head = tiny_aesthetic(tmp_path, mlp=mlp)
    reward = AestheticReward(path=str(clip), head=str(head))
    images = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    scores = reward(images)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    scores.sum().backward()
    assert images.grad.abs().sum() > 0
    # The head's weights are used: another head gives other scores.
    state = torch.load(head, weights_only=True)
    torch.save({k: v * 2 + 0.5 for k, v in state.items()}, tmp_path / "other.pth")
    assert not torch.allclose(AestheticReward(path=str(clip), head=str(tmp_path / "other.pth"))(images), scores)


def test_aesthetic_head_of_the_wrong_width_is_a_clear_error(tmp_path):
    from svdd_lightning.rewards.aesthetic import AestheticReward

    clip, _ = tiny_aesthetic(tmp_path)
    torch.save({"weight": torch.zeros(1, 768), "bias": torch.zeros(1)}, tmp_path / "l14.pth")
    with pytest.raises(CheckpointError, match="768-d embeddings"):
        AestheticReward(path=str(clip), head=str(tmp_path / "l14.pth"))


@pytest.mark.slow  # about 10 s: decode.py in a subprocess
def test_a_file_of_prompts_decodes_one_run_per_prompt(tmp_path, sd_folder):
    import subprocess
    import sys

    from tests.helpers import ROOT

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\na red square\n\na blue circle\n")
    out = tmp_path / "many"
    proc = subprocess.run([sys.executable, str(ROOT / "decode.py"), "domain=latent_image", f"model.path={sd_folder}",
                           f"prompt={prompts}", "decoder=pretrained", "steps=3", "num_samples=2", "logger=none",
                           "trainer.enable_progress_bar=false", f"output_dir={out}"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    index = json.loads((out / "prompts.json").read_text())["prompts"]
    assert [p["prompt"] for p in index] == ["a red square", "a blue circle"]
    for k in range(2):
        assert json.loads((out / f"prompt_{k:03d}" / "summary.json").read_text())["num_samples"] == 2
    first, second = (torch.from_numpy(np.load(out / f"prompt_{k:03d}" / "samples.npy"))
                     for k in range(2))
    assert (first - second).abs().max() > 1e-4  # the prompt conditions the samples


def test_bad_folders_and_prompts_are_clear_errors(tmp_path, sd_folder):
    with pytest.raises(ConfigError, match="needs model.path"):
        load_stable_diffusion(path=None, prompt=PROMPT, num_inference_steps=2)
    (tmp_path / "half" / "unet").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="lacks vae/, text_encoder/, tokenizer/, scheduler/"):
        load_stable_diffusion(path=str(tmp_path / "half"), prompt=PROMPT, num_inference_steps=2)
    with pytest.raises(ConfigError, match="needs a text prompt"):
        load_stable_diffusion(path=str(sd_folder), prompt=None, num_inference_steps=2)
