"""One command, three ways: ``python decode.py ...``, Hydra's ``compose()`` of the same overrides run in this
process (svdd_lightning.tasks.decode.run_decode, what benchmark.py and the tests use), and the Python API with
objects built by hand. Several rewards at once and an inpainting start are the two places where the CLI once
rewrote its own arguments or changed the model as a side effect; the three must give the same samples.

Token models give the same samples bitwise in any batch (the determinism statement in tests/test_decoders.py), so
texts are compared exactly; rewards to samples.csv's six significant digits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import svdd_lightning as svdd
from tests.helpers import run
from tests.test_configs import compose_decode

STEPS, NUM_SAMPLES, CANDIDATES = 8, 4, 3


def read_samples(folder: Path) -> list[dict[str, str]]:
    with open(folder / "samples.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def cli_and_compose(tmp_path: Path, *overrides: str) -> tuple[list[dict], list[dict]]:
    from hydra.core.hydra_config import HydraConfig

    from svdd_lightning.tasks.benchmark_plan import compose_decode as plain_compose
    from svdd_lightning.tasks.decode import run_decode

    common = [*overrides, f"steps={STEPS}", f"num_samples={NUM_SAMPLES}", f"decoder.num_candidates={CANDIDATES}",
              "logger=none", "compute_naturalness=false", "trainer.enable_progress_bar=false"]
    run("decode.py", *common, f"output_dir={tmp_path / 'cli'}", tmp=tmp_path)
    HydraConfig.instance().cfg = None  # a plain compose(): no Hydra runtime state left by another test
    run_decode(plain_compose([*common, f"output_dir={tmp_path / 'compose'}"]))
    return read_samples(tmp_path / "cli"), read_samples(tmp_path / "compose")


def assert_same(rows: list[dict], texts: list[str], rewards: np.ndarray) -> None:
    assert [r["sample"] for r in rows] == texts
    np.testing.assert_allclose([float(r["reward"]) for r in rows], rewards, rtol=1e-5, atol=1e-6)


def test_several_rewards_at_once_from_the_cli_compose_and_python(tmp_path):
    from svdd_lightning.rewards.build import as_reward
    from svdd_lightning.rewards.molecule import QEDReward, SAReward
    from svdd_lightning.rewards.multi import MultiReward

    cli, composed = cli_and_compose(tmp_path, "domain=molecule", "reward=[qed,sa]", "reward.weights=[1,0.5]")
    assert cli == composed and {"reward_qed", "reward_sa"} <= set(cli[0])
    from svdd_lightning.build import build_domain

    domain = build_domain(compose_decode("domain=molecule"))  # the SELFIES vocabulary the checkpoint was trained on
    # By hand: the two rewards, the weights, and the domain's scales (configs/domain/molecule.yaml reward_scale).
    reward = MultiReward(components={"qed": as_reward(QEDReward(), domain=domain),
                                     "sa": as_reward(SAReward(), domain=domain)}, weights=[1.0, 0.5], scales=[0.2, 0.1])
    result = svdd.decode(diffusion=svdd.load_diffusion("checkpoints/molecule/pretrained.ckpt", num_steps=STEPS),
                         reward=reward, domain=domain, decoder="svdd_pm", decoder_options={"num_candidates": CANDIDATES},
                         num_samples=NUM_SAMPLES, seed=0, naturalness=False)
    assert_same(cli, result.texts, result.rewards)
    np.testing.assert_allclose([float(r["reward_sa"]) for r in cli], result.components["sa"], rtol=1e-5, atol=1e-6)


def test_an_inpainting_run_from_the_cli_compose_and_python(tmp_path):
    from svdd_lightning.build import build_domain, build_reward

    seeds = ["ACGT" * 50, "GATTACA" * 28 + "GATA"]
    fasta = tmp_path / "seeds.fa"
    fasta.write_text("".join(f">seed_{k}\n{s}\n" for k, s in enumerate(seeds)))
    cli, composed = cli_and_compose(tmp_path, "domain=dna", f"init.fasta={fasta}", "init.mask=51-80")
    assert cli == composed
    cfg = compose_decode("domain=dna")
    domain = build_domain(cfg)
    result = svdd.decode(diffusion=svdd.load_diffusion("checkpoints/dna/pretrained.ckpt", num_steps=STEPS),
                         reward=build_reward(cfg, domain), domain=domain, decoder="svdd_pm",
                         decoder_options={"num_candidates": CANDIDATES}, num_samples=NUM_SAMPLES, seed=0,
                         naturalness=False, init={"fasta": str(fasta), "mask": "51-80"})
    assert_same(cli, result.texts, result.rewards)
    for index, text in zip(result.indices, result.texts):  # only positions 51-80 (1-based) were redesigned
        seed = seeds[index % 2]
        assert text[:50] == seed[:50] and text[80:] == seed[80:]


@pytest.mark.parametrize("spelling", [["reward=[qed,sa]"], ["reward=multi", "reward.components=[qed,sa]"]])
def test_both_spellings_of_several_rewards_compose_to_the_same_reward(spelling):
    from svdd_lightning.reward_choice import reward_config, reward_label

    cfg = compose_decode("domain=molecule", *spelling, "reward.weights=[1,0.5]", "decoder=smc")
    assert reward_label(cfg.reward) == "qed+sa" and cfg.output_dir.startswith("outputs/decode/molecule-qed+sa-smc-")
    assert cfg.method == "smc"  # the decoder file's own name, a config value (not Hydra's choice)
    assert reward_config(cfg) == {"_target_": "svdd_lightning.rewards.multi.MultiReward", "components": ["qed", "sa"],
                                  "weights": [1, 0.5], "scales": None, "combine": "sum", "alpha": 1.0}
    assert cfg.decoder.alpha == 1.0  # no reward_scale for the combination: SMC's alpha is 1 (sum of scaled rewards)
    single = compose_decode("domain=molecule", "decoder=smc")
    assert reward_label(single.reward) == "qed" and single.decoder.alpha == 0.2  # the domain's reward_scale.qed
    assert reward_config(single) == {"_target_": "svdd_lightning.rewards.molecule.QEDReward"}
