"""The image domain (digits DataModule, JPEG and digit rewards, naturalness, format) and the
oracle stage (train.py stage=oracle) end to end, for DNA tables and for the digits."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.image import DigitsDataModule
from svdd_lightning.diffusion.gaussian import GaussianDiffusion
from svdd_lightning.errors import CheckpointError, ConfigError, DataError
from svdd_lightning.domains.images import ImageDomain
from svdd_lightning.domains.images.naturalness import ImageNaturalness, frechet_distance
from svdd_lightning.modules.oracle import OracleModule
from svdd_lightning.networks.image import ImageClassifier, PrototypeClassifier
from svdd_lightning.networks.image_value import ImageValueNet
from svdd_lightning.networks.sequence import SequenceRegressor
from svdd_lightning.rewards.image import CompressibilityReward, DigitReward
from svdd_lightning.rewards.oracle import OracleReward, build_oracle_network
from tests.contracts import RewardContract

from tests.helpers import TEST_THREADS, image_domain, molecule_domain, on_domain, rna_domain  # noqa: F401
from tests.helpers import ROOT, ddpm_alphas_cumprod, tiny_unet_denoiser  # noqa: E402
from tests.helpers import TINY as DNA_TINY  # noqa: E402
from tests.helpers import run  # noqa: E402

IMAGE_TINY = ["steps=4", "diffusion.unet.block_out_channels=[8,16]", "diffusion.unet.norm_num_groups=4",
              "diffusion.unet.attention_head_dim=4", "value_network.channels=8", "value_network.time_dim=8", "oracle_network.channels=8", "trainer.enable_progress_bar=false"]


def write_oracle_checkpoint(path: Path, *, network: torch.nn.Module, task: str, domain: str,
                            input_key: str, input_shape, config: dict | None = None, **extra) -> Path:
    """An (untrained) oracle checkpoint in the format train.py stage=oracle writes (``config``: what the
    network's description must say, checked against what the module records)."""
    module = OracleModule(network=network, domain=domain, task=task, input_key=input_key,
                          input_shape=input_shape, **extra)
    meta = module.checkpoint_metadata()
    if config is not None:
        assert {k: meta["network"][k] for k in config} == config
    torch.save({"state_dict": module.state_dict(), "svdd": meta}, path)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine OpenMP barriers make
    two threads far slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    data = DigitsDataModule(batch_size=32)
    data.setup("fit")
    return data


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory, digits) -> Path:
    """A tiny digit classifier, briefly trained (about a second) so its features mean something."""
    torch.manual_seed(0)
    net = ImageClassifier(in_channels=1, num_classes=10, channels=4)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        pick = torch.randint(0, len(digits.train_images), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(digits.train_images[pick]), digits.train_labels[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    config = {"_target_": "svdd_lightning.networks.image.ImageClassifier", "in_channels": 1, "num_classes": 10,
              "channels": 4}
    return write_oracle_checkpoint(tmp_path_factory.mktemp("clf") / "oracle.ckpt", network=net, config=config,
                                   task="classification", domain="image", input_key="images", input_shape=[1, 8, 8],
                                   num_classes=10, class_names=[str(k) for k in range(10)])


def random_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --------------------------------------------------------------------------------------- #
# Rewards
# --------------------------------------------------------------------------------------- #


class TestCompressibilityContract(RewardContract):
    @pytest.fixture
    def reward(self):
        return on_domain(CompressibilityReward(), image_domain())

    @pytest.fixture
    def reward_inputs(self):
        return random_images(5)


class TestDigitContract(RewardContract):
    @pytest.fixture
    def reward(self, classifier_ckpt):
        return DigitReward(checkpoint=str(classifier_ckpt), target_class=3)

    @pytest.fixture
    def reward_inputs(self):
        return random_images(5)


def test_jpeg_reward_is_minus_pillow_kilobytes(digits):
    x = torch.cat([digits.val_images[:6], random_images(2)])
    reward = on_domain(CompressibilityReward(), image_domain())(x)
    for image, r in zip(x, reward):
        pixels = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=95)
        assert r.item() == pytest.approx(-buffer.tell() / 1000.0)


def test_flat_image_compresses_better_than_noise():
    flat = torch.zeros(3, 1, 8, 8)
    reward = on_domain(CompressibilityReward(), image_domain())
    assert reward(flat).min() > reward(random_images(3)).max()


def test_compressibility_handles_rgb_and_nan_without_gradients():
    x = torch.full((2, 3, 8, 8), float("nan"), requires_grad=True)
    out = on_domain(CompressibilityReward(), image_domain())(x)
    assert out.shape == (2,) and torch.isfinite(out).all() and not out.requires_grad


def test_digit_reward_is_a_differentiable_class_log_probability(classifier_ckpt):
    reward = DigitReward(checkpoint=str(classifier_ckpt), target_class=3)
    x = random_images(4).requires_grad_(True)
    out = reward(x)
    expected = torch.log_softmax(reward.network(x), dim=-1)[:, 3]
    torch.testing.assert_close(out, expected)
    assert (out <= 0).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in reward.parameters())


def test_oracle_reward_options_are_checked(classifier_ckpt, tmp_path):
    with pytest.raises(ConfigError, match="target_class in 0..9"):
        OracleReward(checkpoint=str(classifier_ckpt))
    with pytest.raises(CheckpointError, match="trained for domain 'image'"):
        OracleReward(checkpoint=str(classifier_ckpt), target_class=1, domain="dna")
    ckpt = tmp_path / "diffusion.ckpt"
    torch.save({"state_dict": {}, "svdd": {"kind": "diffusion", "domain": "image"}}, ckpt)
    with pytest.raises(CheckpointError, match="holds a diffusion model"):
        DigitReward(checkpoint=str(ckpt))
    with pytest.raises(ConfigError, match="inputs of shape"):
        OracleReward(checkpoint=str(classifier_ckpt), target_class=1)(torch.zeros(2, 1, 16, 16))


def test_regression_oracle_returns_label_units(tmp_path):
    torch.manual_seed(0)
    net = SequenceRegressor(vocab_size=4, channels=8, num_layers=2)
    config = {"_target_": "svdd_lightning.networks.sequence.SequenceRegressor", "vocab_size": 4, "channels": 8,
              "num_layers": 2}
    ckpt = write_oracle_checkpoint(tmp_path / "o.ckpt", network=net, config=config, task="regression", domain="dna",
                                   input_key="tokens", input_shape=[12], label_columns=["HepG2"], label_mean=2.0,
                                   label_std=3.0)
    reward = OracleReward(checkpoint=str(ckpt), domain="dna")
    x = torch.randint(0, 4, (5, 12), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(reward(x), net.eval()(x) * 3.0 + 2.0)
    with pytest.raises(ConfigError, match="has no classes"):
        OracleReward(checkpoint=str(ckpt), target_class=0)


# --------------------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------------------- #


def test_digits_datamodule_shapes_range_labels_and_split(digits):
    assert digits.train_images.shape[1:] == (1, 8, 8) and digits.train_images.dtype == torch.float32
    assert len(digits.train_images) + len(digits.val_images) == 1797
    assert len(digits.val_images) == 180 and len(digits.val_labels) == 180
    for images in (digits.train_images, digits.val_images):
        assert images.min() == -1.0 and images.max() == 1.0
    assert digits.num_classes == 10 and set(digits.val_labels.tolist()) == set(range(10))
    batch = next(iter(digits.train_dataloader()))
    assert batch["images"].shape == (32, 1, 8, 8) and batch["labels"].dtype == torch.long
    again = DigitsDataModule(batch_size=32)
    again.setup()
    assert torch.equal(again.val_images, digits.val_images) and torch.equal(again.val_labels, digits.val_labels)


def test_user_npy_in_0_255_is_scaled_and_unlabelled(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (20, 8, 8)).astype(np.uint8)
    array[0, 0, 0], array[0, 0, 1] = 0, 255
    np.save(tmp_path / "x.npy", array)
    data = DigitsDataModule(path=str(tmp_path / "x.npy"), val_fraction=0.25)
    data.setup()
    images = torch.cat([data.train_images, data.val_images])
    assert images.min() == -1.0 and images.max() == 1.0 and len(data.val_images) == 5
    assert data.num_classes is None and (data.train_labels == -1).all()


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    data = DigitsDataModule(path=str(tmp_path), image_size=8, val_fraction=0.0)
    data.setup()
    assert data.train_images.shape == (6, 1, 8, 8) and data.class_names == ["cat", "dog"]
    assert sorted(data.train_labels.tolist()) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("content, match", [
    (np.zeros((4, 8)), "shape"),
    (-np.ones((4, 8, 8)), "negative"),
    (np.full((4, 8, 8), 300.0), "up to 300"),
    (np.zeros((4, 7, 7)), "even height"),
])
def test_bad_npy_is_a_clear_data_error(tmp_path, content, match):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(DataError, match=match) as info:
        DigitsDataModule(path=str(path)).setup()
    assert str(path) in str(info.value)


def test_corrupt_or_missing_file_is_a_clear_data_error(tmp_path):
    path = tmp_path / "corrupt.npy"
    path.write_bytes(b"not a numpy file")
    with pytest.raises(DataError, match="could not be read") as info:
        DigitsDataModule(path=str(path)).setup()
    assert str(path) in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        DigitsDataModule(path=str(tmp_path / "missing.npy")).setup()


# --------------------------------------------------------------------------------------- #
# Networks, format, naturalness
# --------------------------------------------------------------------------------------- #


def test_image_value_net_gives_one_value_per_sample():
    torch.manual_seed(0)
    net = ImageValueNet(channels=4, time_dim=8)
    x = random_images(3)
    out = net(x, torch.tensor([0.0, 0.5, 1.0]))
    assert out.shape == (3,)
    torch.testing.assert_close(net(x[1:2], torch.tensor([0.5])), out[1:2], atol=1e-5, rtol=1e-5)
    assert net(x).shape == (3,)


def test_image_format_writes_npy_and_png(tmp_path, digits):
    domain = ImageDomain()
    x = digits.val_images[:7]
    names = domain.to_text(x)
    assert names[0] == "sample_00000" and names[6] == "sample_00006"
    path, grid = domain.write_native(tmp_path, samples=x, texts=names, rewards=[-0.39] * 7, indices=list(range(7)))
    assert path == tmp_path / "samples.npy" and grid == tmp_path / "samples.png"
    saved = np.load(path)
    assert saved.shape == (7, 1, 8, 8) and saved.dtype == np.float32
    np.testing.assert_allclose(saved, x.numpy())
    with Image.open(tmp_path / "samples.png") as grid:
        assert grid.size[0] >= 200 and grid.size[1] >= 200
    assert not list(tmp_path.glob("*.partial"))


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3))
    mu, cov = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-6)
    # 1-D: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]]))
    assert value == pytest.approx(1.0 + 4.0 + 1.0 - 2.0 * 2.0)


def test_naturalness_real_digits_beat_noise(tmp_path, digits, classifier_ckpt):
    nat = ImageNaturalness(classifier=str(classifier_ckpt), reference=str(tmp_path / "real_images.npz"),
                           num_estimates=2)
    ref = nat.write_reference(digits, tmp_path)
    assert ref.stat().st_size < 200_000
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(network=tiny_unet_denoiser(), event_shape=(1, 8, 8), num_steps=4,
                                  alphas_cumprod=ddpm_alphas_cumprod("linear"), timestep_input="index",
                                  clip_sample=1.0)
    real = nat(digits.val_images[:48], diffusion=diffusion, seed=0)
    noise = nat(random_images(48), diffusion=diffusion, seed=0)
    for key in ("log_likelihood", "log_likelihood_median", "frechet_distance", "frechet_distance_real",
                "digit_rate", "digit_rate_real", "class_entropy_bits"):
        assert key in real and np.isfinite(real[key]), key
    assert 0.0 <= real["digit_rate"] <= 1.0
    assert real["frechet_distance"] < noise["frechet_distance"]
    # Without classifier and reference only the likelihood and the diversity are reported.
    bare = ImageNaturalness(classifier=str(tmp_path / "none.ckpt"), num_estimates=2)(
        digits.val_images[:4], diffusion=diffusion, seed=0)
    assert set(bare) == {"log_likelihood", "log_likelihood_median", "unique_fraction", "diversity"}
    copies = ImageNaturalness(classifier=None, num_estimates=2)(
        digits.val_images[:1].repeat(4, 1, 1, 1), diffusion=None, seed=0)
    assert copies["unique_fraction"] == 0.25 and copies["diversity"] == 0.0
    assert bare["unique_fraction"] == 1.0 and bare["diversity"] > 0.1


# --------------------------------------------------------------------------------------- #
# The naturalness judge: a classifier independent of the digit reward's
# --------------------------------------------------------------------------------------- #

REWARD_CLASSIFIER = ROOT / "checkpoints/image/oracle_digit.ckpt"
JUDGE = ROOT / "checkpoints/image/naturalness_classifier.ckpt"
REAL_IMAGES = ROOT / "checkpoints/image/real_images.npz"


def test_prototype_classifier_is_per_sample_and_unsure_far_from_every_class():
    torch.manual_seed(0)
    net = PrototypeClassifier(num_classes=10, width=4, features=8, log_floor=-10.0).eval()
    x = random_images(5)
    out = net(x)
    assert out.shape == (5, 10)
    torch.testing.assert_close(net(x[2:3]), out[2:3], atol=1e-5, rtol=1e-5)
    # Features far from every prototype: every logit at the floor, a uniform softmax.
    far = net(x * 1e4)
    torch.testing.assert_close(torch.softmax(far, -1), torch.full_like(far, 0.1), atol=1e-4, rtol=0)
    # The last linear layer (whose input the Frechet distance takes as features) is the prototype head.
    from svdd_lightning.domains.images.naturalness import last_linear

    assert last_linear(net) is net.head and net.head.bias is None
    with pytest.raises(ValueError, match="divisible by 4"):
        PrototypeClassifier(image_size=6)
    with pytest.raises(ValueError, match="got \\(2, 1, 4, 4\\)"):
        net(torch.zeros(2, 1, 4, 4))


def test_shipped_naturalness_judge_is_independent_of_the_reward_classifier(digits):
    judge, judge_meta = build_oracle_network(str(JUDGE), domain="image")
    reward_net, reward_meta = build_oracle_network(str(REWARD_CLASSIFIER), domain="image")
    assert JUDGE.stat().st_size < 300_000
    assert judge_meta["task"] == "classification" and judge_meta["num_classes"] == 10
    # Another architecture: other class, no parameter in common (names or shapes).
    assert judge_meta["network"]["_target_"] != reward_meta["network"]["_target_"]
    assert isinstance(judge, PrototypeClassifier) and not isinstance(judge, ImageClassifier)
    judge_params = {(k, tuple(v.shape)) for k, v in judge.state_dict().items()}
    reward_params = {(k, tuple(v.shape)) for k, v in reward_net.state_dict().items()}
    assert not judge_params & reward_params
    # It classifies held-out digits (the split neither classifier trained on) well, and rejects noise.
    with torch.no_grad():
        probs = torch.softmax(judge(digits.val_images), -1)
        noise = torch.softmax(judge(random_images(500, seed=1)), -1)
    assert (probs.argmax(-1) == digits.val_labels).float().mean() >= 0.98
    assert (probs.max(-1).values > 0.9).float().mean() >= 0.95
    assert (noise.max(-1).values > 0.9).float().mean() <= 0.05
    assert judge_meta["val_metrics"]["val/accuracy"] >= 0.98


def test_judge_sees_reward_hacking_the_reward_classifier_hides():
    """Noise pushed along the reward's gradient: the reward's classifier calls it a confident 0,
    the independent judge does not."""
    reward = DigitReward(checkpoint=str(REWARD_CLASSIFIER), target_class=0)
    x = random_images(64, seed=0)
    for _ in range(30):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(reward(x).sum(), x)
        x = (x.detach() + 0.05 * grad.sign()).clamp(-1, 1)
    assert reward(x).median() > -0.01
    old = ImageNaturalness(classifier=str(REWARD_CLASSIFIER), reference=str(REAL_IMAGES))(x, diffusion=None, seed=0)
    new = ImageNaturalness(classifier=str(JUDGE), reference=str(REAL_IMAGES))(x, diffusion=None, seed=0)
    assert old["digit_rate"] >= 0.9 and old["class_entropy_bits"] < 0.5
    assert new["digit_rate"] <= 0.5 and new["class_entropy_bits"] > 1.0
    assert new["digit_rate_real"] >= 0.95


def test_image_domain_config_judges_naturalness_with_the_independent_classifier():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("decode", overrides=["domain=image", "reward=digit"])
    assert cfg.objects.classifier == "checkpoints/image/naturalness_classifier.ckpt"
    assert cfg.reward.checkpoint == "checkpoints/image/oracle_digit.ckpt"
    assert instantiate(cfg.objects).judge.load_classifier() is not None
    # The shipped judge was trained from the domain's naturalness_network node (README, Training).
    meta = torch.load(JUDGE, map_location="cpu", weights_only=True)["svdd"]
    assert meta["network"] == OmegaConf.to_container(cfg.naturalness_network, resolve=True)
    assert isinstance(instantiate(cfg.naturalness_network), PrototypeClassifier)


# --------------------------------------------------------------------------------------- #
# The oracle stage and decoding against it, end to end
# --------------------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("image-e2e")


@pytest.fixture(scope="module")
def labelled_table(workdir) -> Path:
    """64 rows of 24-nt sequences with a HepG2 label that grows with GC content."""
    rng = random.Random(0)
    path = workdir / "enhancers.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sequence", "HepG2", "K562"])
        for _ in range(64):
            seq = "".join(rng.choice("ACGT") for _ in range(24))
            gc = sum(c in "GC" for c in seq) / 24
            writer.writerow([seq, round(3 * gc + rng.gauss(0, 0.1), 4), round(rng.gauss(0, 1), 4)])
    return path


@pytest.mark.slow  # about 25 s: train.py oracle + decode in subprocesses
def test_dna_oracle_stage_then_decode_against_it(workdir, labelled_table):
    oracle_dir, pre_dir, out = workdir / "dna-oracle", workdir / "dna-pretrain", workdir / "dna-decode"
    proc = run("train.py", "stage=oracle", "domain=dna", f"data.path={labelled_table}", "data.label_columns=[HepG2]",
               "data.batch_size=16", "data.val_fraction=0.25", "trainer.max_steps=3", "logger=csv",
               f"output_dir={oracle_dir}", *DNA_TINY, tmp=workdir)
    assert "val/pearson" in proc.stdout and "val/spearman" in proc.stdout
    ckpt = torch.load(oracle_dir / "oracle.ckpt", weights_only=False)
    meta = ckpt["svdd"]
    assert meta["kind"] == "oracle" and meta["domain"] == "dna" and meta["task"] == "regression"
    assert meta["label_columns"] == ["HepG2"] and meta["network"]["_target_"].endswith("SequenceRegressor")
    assert meta["input_shape"] == [24] and meta["label_std"] > 0
    assert all(k.startswith("network.") for k in ckpt["state_dict"])
    assert list(oracle_dir.glob("csv/version_*/metrics.csv"))

    run("train.py", "stage=pretrain", f"data.path={labelled_table}", "data.batch_size=16", "trainer.max_steps=2",
        "pretrain.val_check_interval=2", "logger=none", f"output_dir={pre_dir}", *DNA_TINY, tmp=workdir)
    run("decode.py", "domain=dna", "reward=oracle", f"reward.checkpoint={oracle_dir / 'oracle.ckpt'}",
        f"diffusion.checkpoint={pre_dir / 'pretrained.ckpt'}", "num_samples=6", "batch_size=4",
        "decoder.num_candidates=3", "logger=none", f"output_dir={out}", *DNA_TINY, tmp=workdir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"] == "oracle" and summary["num_samples"] == 6
    assert np.isfinite(summary["reward_stats"]["mean"])


def test_oracle_stage_on_multiple_label_columns_is_a_clear_error(workdir, labelled_table):
    proc = run("train.py", "stage=oracle", "domain=dna", f"data.path={labelled_table}",
               "data.label_columns=[HepG2,K562]", "trainer.max_steps=1", "logger=none",
               f"output_dir={workdir / 'dna-oracle-bad'}", *DNA_TINY, tmp=workdir, check=False)
    assert proc.returncode == 2 and "one label column" in proc.stderr and "Traceback" not in proc.stderr


def test_oracle_stage_trains_the_naturalness_judge(workdir):
    out = workdir / "img-judge"
    proc = run("train.py", "stage=oracle", "domain=image", "seed=1", "oracle.network=${naturalness_network}",
               "naturalness_network.width=4", "naturalness_network.features=8", "trainer.max_steps=3",
               "logger=none", f"output_dir={out}", *IMAGE_TINY, tmp=workdir)
    assert "val/accuracy" in proc.stdout
    meta = torch.load(out / "oracle.ckpt", weights_only=False)["svdd"]
    assert meta["network"]["_target_"] == "svdd_lightning.networks.image.PrototypeClassifier"
    assert meta["network"]["width"] == 4 and meta["num_classes"] == 10
    net, _ = build_oracle_network(str(out / "oracle.ckpt"), domain="image")
    assert isinstance(net, PrototypeClassifier)


@pytest.mark.slow  # about 26 s: oracle, pretrain and decode in subprocesses
def test_image_oracle_pretrain_and_decode(workdir):
    oracle_dir, pre_dir, out = workdir / "img-oracle", workdir / "img-pretrain", workdir / "img-decode"
    proc = run("train.py", "stage=oracle", "domain=image", "trainer.max_steps=3", "logger=none",
               f"output_dir={oracle_dir}", *IMAGE_TINY, tmp=workdir)
    assert "val/accuracy" in proc.stdout
    meta = torch.load(oracle_dir / "oracle.ckpt", weights_only=False)["svdd"]
    assert meta["task"] == "classification" and meta["num_classes"] == 10 and meta["domain"] == "image"
    assert meta["network"] == {"_target_": "svdd_lightning.networks.image.ImageClassifier", "in_channels": 1,
                               "num_classes": 10, "channels": 8}

    run("train.py", "stage=pretrain", "domain=image", "trainer.max_steps=2", "pretrain.val_check_interval=2",
        "logger=none", f"output_dir={pre_dir}", *IMAGE_TINY, tmp=workdir)
    assert (pre_dir / "real_images.npz").is_file()

    run("decode.py", "domain=image", "decoder=svdd_pm", "reward=compressibility",
        f"diffusion.checkpoint={pre_dir / 'pretrained.ckpt'}", f"objects.classifier={oracle_dir / 'oracle.ckpt'}",
        f"objects.naturalness_reference={pre_dir / 'real_images.npz'}", "num_samples=6", "batch_size=4",
        "decoder.num_candidates=3", "logger=none", f"output_dir={out}", *IMAGE_TINY, tmp=workdir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["domain"] == "image" and summary["reward"] == "compressibility"
    assert summary["nfe"]["denoiser"] == 6 * (1 + (4 - 1) * 3)
    for key in ("log_likelihood", "frechet_distance", "digit_rate", "digit_rate_real"):
        assert key in summary["naturalness"], key
    samples = np.load(out / "samples.npy")
    assert samples.shape == (6, 1, 8, 8) and samples.min() >= -1.0 and samples.max() <= 1.0
    rows = list(csv.DictReader(open(out / "samples.csv")))
    assert [r["sample"] for r in rows] == [f"sample_{j:05d}" for j in range(6)]
    rewards = on_domain(CompressibilityReward(), image_domain())(torch.from_numpy(samples))
    np.testing.assert_allclose([float(r["reward"]) for r in rows], rewards.numpy(), atol=1e-6)
    assert (out / "samples.png").stat().st_size > 1000
    assert not list(out.glob("*.partial"))
