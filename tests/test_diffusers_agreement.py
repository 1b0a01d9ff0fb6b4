"""GaussianDiffusion.from_diffusers agrees with diffusers itself: for a tiny UNet2DModel with random weights
(saved with save_pretrained and loaded back, as a user's folder would be), epsilon and v_prediction models,
DDIM with eta = 0 and eta = 1, our pre-trained sampling gives the images of diffusers' own scheduler step
loop and of its DDIMPipeline fed the same noise, within 1e-4."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from svdd_lightning import ops  # noqa: E402
from svdd_lightning.decoders.pretrained import PretrainedSampler  # noqa: E402
from svdd_lightning.diffusion.gaussian import from_diffusers  # noqa: E402

STEPS = 10
BATCH = 3


def tiny_unet_folder(tmp_path, prediction_type):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                                 block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 attention_head_dim=4)
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", clip_sample=False,
                                        prediction_type=prediction_type)
    folder = tmp_path / prediction_type
    unet.save_pretrained(folder / "unet")
    scheduler.save_pretrained(folder / "scheduler")
    return (diffusers.UNet2DModel.from_pretrained(folder / "unet").eval(),
            diffusers.DDIMScheduler.from_pretrained(folder / "scheduler"))


def reference_loop(unet, scheduler, eta, seed):
    """diffusers' scheduler.step loop, with our per-sample noise (same generators, same order of draws)."""
    gens = ops.make_generators(seed, range(BATCH))
    x = ops.randn(gens, (1, 8, 8))
    scheduler.set_timesteps(STEPS)
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = unet(x, t).sample
            noise = ops.randn(gens, (1, 1, 8, 8))[:, 0] if eta > 0 else None
            x = scheduler.step(out, t, x, eta=eta, variance_noise=noise).prev_sample
    return x


class NoReward(torch.nn.Module):
    name = "none"
    is_differentiable = False

    def forward(self, x0):
        return torch.zeros(x0.shape[0])


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_pretrained_sampling_matches_diffusers(tmp_path, prediction_type, eta):
    unet, scheduler = tiny_unet_folder(tmp_path, prediction_type)
    diffusion = from_diffusers(unet, scheduler, num_inference_steps=STEPS, eta=eta).eval()
    assert diffusion.prediction_type == prediction_type and diffusion.num_steps == STEPS
    ours = PretrainedSampler(reward=NoReward())(diffusion, BATCH, ops.make_generators(7, range(BATCH))).samples
    theirs = reference_loop(unet, scheduler, eta, seed=7)
    assert (ours - theirs).abs().max() < 1e-4

    # diffusers' own pipeline, with one torch.Generator per image seeded as ours (it draws the same noise).
    pipe = diffusers.DDIMPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=BATCH, generator=ops.make_generators(7, range(BATCH)), eta=eta,
                  num_inference_steps=STEPS, output_type="np").images  # (B, H, W, C) in [0, 1]
    ours_np = (ours / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert abs(ours_np - images).max() < 1e-4


def test_the_comparison_can_fail(tmp_path):
    """Read as an epsilon model, a v_prediction UNet gives other images: the tolerance is not vacuous."""
    unet, scheduler = tiny_unet_folder(tmp_path, "v_prediction")
    scheduler.register_to_config(prediction_type="epsilon")
    wrong = from_diffusers(unet, scheduler, num_inference_steps=STEPS, eta=0.0).eval()
    scheduler.register_to_config(prediction_type="v_prediction")
    ours = PretrainedSampler(reward=NoReward())(wrong, BATCH, ops.make_generators(7, range(BATCH))).samples
    assert (ours - reference_loop(unet, scheduler, 0.0, seed=7)).abs().max() > 1e-2


def test_a_users_pipeline_folder_decodes_through_decode_py(tmp_path):
    """`decode.py domain=image model.path=DIR` with a DDPMPipeline folder (random tiny UNet): SVDD-PM runs on
    the folder's own UNet and scheduler and writes the image outputs."""
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode

    unet, _ = tiny_unet_folder(tmp_path, "epsilon")
    folder = tmp_path / "my-ddpm"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    out = tmp_path / "decode"
    cfg = compose_decode("domain=image", f"model.path={folder}", "decoder=svdd_pm", "decoder.num_candidates=2",
                         "steps=5", "num_samples=4", "batch_size=4", "logger=none", "trainer.enable_progress_bar=false",
                         f"output_dir={out}")
    summary = run_decode(cfg)
    assert summary["num_samples"] == 4 and summary["steps"] == 5
    assert (out / "samples.npy").is_file() and (out / "samples.png").is_file()
    assert summary["calls_per_sample"]["denoiser"] > 0


def test_pretrain_trains_a_unet2dmodel_and_writes_a_pipeline_folder(tmp_path):
    """train.py stage=pretrain domain=image (tiny, 2 steps) trains a diffusers
    UNet2DModel and writes a folder diffusers' own DDIMPipeline loads and samples from; decode.py reads it back
    with model.path=."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from svdd_lightning.tasks import train
    from tests.helpers import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "stage=pretrain", "domain=image", "steps=4",
            "diffusion.unet.block_out_channels=[8,16]", "diffusion.unet.norm_num_groups=4",
            "diffusion.unet.attention_head_dim=4", "trainer.max_steps=2", "pretrain.val_check_interval=2",
            "data.batch_size=16", "logger=none", "trainer.enable_progress_bar=false",
            f"output_dir={tmp_path / 'pretrain'}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    train.run_pretrain(cfg, Path(cfg.output_dir))
    folder = tmp_path / "pretrain" / "pipeline"
    pipe = diffusers.DDIMPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(batch_size=2, num_inference_steps=3, output_type="np").images
    assert images.shape == (2, 8, 8, 1)
    assert isinstance(pipe.unet, diffusers.UNet2DModel)

    # The Lightning checkpoint of the same model decodes through the config too.
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode

    out = tmp_path / "decode"
    cfg = compose_decode("domain=image", "steps=4",
                         "diffusion.unet.block_out_channels=[8,16]", "diffusion.unet.norm_num_groups=4",
                         "diffusion.unet.attention_head_dim=4",
                         f"diffusion.checkpoint={tmp_path / 'pretrain' / 'pretrained.ckpt'}",
                         "decoder=best_of_n", "decoder.num_candidates=2", "num_samples=2", "batch_size=2",
                         "logger=none", "compute_naturalness=false", "trainer.enable_progress_bar=false",
                         f"output_dir={out}")
    assert run_decode(cfg)["num_samples"] == 2 and (out / "samples.npy").is_file()


def test_value_stage_trains_on_a_users_pipeline_folder(tmp_path):
    """train.py stage=value model.path=DIR: SVDD-MC rollouts and regression on a user's DDPM pipeline folder."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from svdd_lightning.tasks import train
    from tests.helpers import ROOT

    unet, _ = tiny_unet_folder(tmp_path, "epsilon")
    folder = tmp_path / "my-ddpm"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            "stage=value", "domain=image", "reward=compressibility", f"model.path={folder}", "steps=4",
            "value_network.channels=8", "value_network.time_dim=8", "value_training.num_rollouts=8",
            "value_training.rollout_batch_size=4", "value_training.batch_size=8", "value_training.val_check_interval=2",
            "trainer.max_steps=2", "logger=none", "trainer.enable_progress_bar=false",
            f"output_dir={tmp_path / 'value'}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    path = train.run_value(cfg, Path(cfg.output_dir))
    assert path.is_file() and (tmp_path / "value" / "rollouts.pt").is_file()
