"""Every config group composes and every _target_ instantiates with typed keyword arguments."""

from pathlib import Path

import pytest

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from svdd_lightning.build import (build_decoder, build_diffusion, build_domain, build_logger, build_reward,
                                  split_checkpoint)
from svdd_lightning.decoders.base import Decoder
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.rewards.base import Reward

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def compose_decode(*overrides):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("decode", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return cfg


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize("decoder", options("decoder"))
def test_every_decoder_composes_and_instantiates(decoder):
    """Through the builders decode.py itself uses (svdd_lightning/build.py)."""
    cfg = compose_decode(f"decoder={decoder}")
    assert cfg.method == decoder  # the name outputs carry is the file's, as a config value
    node, checkpoint = split_checkpoint(cfg.diffusion)
    assert checkpoint
    domain = build_domain(cfg)
    diffusion = build_diffusion(cfg, domain)
    assert isinstance(diffusion, Diffusion)
    reward = build_reward(cfg, domain)
    assert isinstance(reward, Reward)
    dec, _value = build_decoder(cfg, diffusion=diffusion, reward=reward)  # max_batch=auto -> a number on CPU
    assert isinstance(dec, Decoder)
    assert dec.settings().get("num_candidates") is not None


REWARD_DOMAIN = {"qed": "molecule", "sa": "molecule", "logp": "molecule", "mfe": "rna", "compressibility": "image",
                 "digit": "image", "oracle": "image", "aesthetic": "latent_image",
                 "hydrophobicity": "antibody", "instability": "antibody", "net_charge": "antibody", "multi": "molecule",
                 "ehrlich": "ehrlich"}


@pytest.fixture(scope="module")
def image_oracle_checkpoint(tmp_path_factory) -> Path:
    """An untrained digit classifier in the format `train.py stage=oracle` writes."""
    from svdd_lightning.networks.image import ImageClassifier
    from tests.test_image import write_oracle_checkpoint

    config = {"_target_": "svdd_lightning.networks.image.ImageClassifier", "in_channels": 1, "num_classes": 10,
              "channels": 4}
    net = ImageClassifier(in_channels=1, num_classes=10, channels=4)
    return write_oracle_checkpoint(tmp_path_factory.mktemp("oracle") / "oracle.ckpt", network=net, config=config,
                                   task="classification", domain="image", input_key="images",
                                   input_shape=[1, 8, 8], num_classes=10, class_names=[str(k) for k in range(10)])


@pytest.mark.parametrize("reward", options("reward"))
def test_every_reward_instantiates(reward, image_oracle_checkpoint, tmp_path):
    overrides = [f"domain={REWARD_DOMAIN.get(reward, 'dna')}", f"reward={reward}"]
    if reward in ("digit", "oracle"):
        overrides += [f"reward.checkpoint={image_oracle_checkpoint}", "reward.target_class=3"]
    if reward == "function":
        overrides += ["reward._target_=tests.user_reward.gc_fraction"]
    if reward == "aesthetic":
        from tests.tiny_pipelines import tiny_aesthetic

        clip, head = tiny_aesthetic(tmp_path)
        overrides += [f"reward.path={clip}", f"reward.head={head}"]
    cfg = compose_decode(*overrides)
    assert isinstance(build_reward(cfg, build_domain(cfg)), Reward)


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_option_composes_and_instantiates(logger, tmp_path):
    cfg = compose_decode(f"logger={logger}")
    built = build_logger(cfg, output_dir=tmp_path, name="run")
    expected = {"none": "NoneType", "csv": "CSVLogger", "wandb": "WandbLogger"}[logger]
    assert type(built).__name__ == expected


def test_domain_datamodule_and_format_instantiate():
    cfg = compose_decode("domain=dna")
    data = instantiate(cfg.data)
    assert data.seq_len == 200
    domain = build_domain(cfg)
    assert domain.native_name == "samples.fasta" and data.domain.alphabet == domain.alphabet == "ACGT"


def test_learned_value_checkpoint_follows_the_reward():
    """value.checkpoint=null is the shipped value of the reward as built (its own name), so a plain compose() with no
    Hydra runtime state finds it too; a path given is used as given."""
    from svdd_lightning.build import value_checkpoint

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        plain = compose("decode", overrides=["decoder=svdd_mc", "reward=gc"])  # no return_hydra_config, no set_config
    assert plain.value.checkpoint is None
    domain = build_domain(plain)
    assert value_checkpoint(plain, build_reward(plain, domain)) == "checkpoints/dna/value_gc.ckpt"
    given = compose_decode("decoder=svdd_mc", "reward=gc", "value.checkpoint=elsewhere/mine.ckpt")
    assert value_checkpoint(given, build_reward(given, domain)) == "elsewhere/mine.ckpt"


def test_train_config_composes():
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["stage=value"], return_hydra_config=True)
    assert cfg.value._target_.endswith("LearnedValue") and cfg.stage == "value"


SHIPPED_VALUES = sorted(Path(__file__).resolve().parent.parent.glob("checkpoints/*/value_*.ckpt"))


@pytest.mark.parametrize("path", SHIPPED_VALUES, ids=[f"{p.parent.name}-{p.stem}" for p in SHIPPED_VALUES])
def test_every_shipped_value_is_accepted_for_its_reward(path):
    """decoder=svdd_mc builds with each shipped value (its recorded reward settings match the config's)."""
    from svdd_lightning.build import value_checkpoint
    from svdd_lightning.checkpoints import check_value_reward
    from svdd_lightning.reward_choice import reward_config

    # checkpoints/ehrlich_NAME/ is domain=ehrlich with the preset ehrlich=NAME
    domain_options = ["domain=ehrlich", f"ehrlich={path.parent.name.removeprefix('ehrlich_')}"] \
        if path.parent.name.startswith("ehrlich_") else [f"domain={path.parent.name}"]
    cfg = compose_decode(*domain_options, f"reward={path.stem.removeprefix('value_')}", "decoder=svdd_mc")
    domain = build_domain(cfg)
    check_value_reward(value_checkpoint(cfg, build_reward(cfg, domain)), reward_config(cfg))
    _, value = build_decoder(cfg, diffusion=build_diffusion(cfg, domain), reward=build_reward(cfg, domain))
    assert value is not None


@pytest.mark.parametrize("compiled", [False, True])
def test_decoder_compile_and_dedup_options(compiled):
    """decoder.compile=true hands the denoiser and value networks to torch.compile (compiled lazily, on the first
    call); decoder.dedup reaches the decoder."""
    cfg = compose_decode("decoder=svdd_mc", f"decoder.compile={str(compiled).lower()}", "decoder.dedup=false")
    domain = build_domain(cfg)
    diffusion = build_diffusion(cfg, domain)
    dec, value = build_decoder(cfg, diffusion=diffusion, reward=build_reward(cfg, domain))
    assert (diffusion.network._compiled_call_impl is not None) == compiled
    assert (value.network._compiled_call_impl is not None) == compiled
    assert dec.settings()["dedup"] is False and not dec.deduplicates(diffusion)
