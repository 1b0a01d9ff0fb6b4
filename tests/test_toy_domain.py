"""A domain added from outside: tests/toy_domain.py (3 letters) and tests/configs/domain/toy.yaml, with a
plain-function reward. A tiny model and value are trained here, and every decoder decodes end to end
through decode.py's own code path, with no edit under svdd_lightning/ for the domain's sake."""

import json
import random
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from svdd_lightning.tasks import train
from svdd_lightning.tasks.decode import run_decode

ROOT = Path(__file__).resolve().parent.parent
SEARCHPATH = f"hydra.searchpath=[file://{ROOT / 'tests' / 'configs'}]"
DECODERS = ["pretrained", "best_of_n", "svdd_pm", "svdd_mc", "smc", "svdd_r", "dps"]


def compose_run(config: str, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config, overrides=["domain=toy", SEARCHPATH, "logger=none", "trainer.enable_progress_bar=false",
                                         *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(pre-trained checkpoint, value checkpoint) of the toy domain, trained on a FASTA of toy sequences
    in which H comes in runs (so the model has something to learn)."""
    work = tmp_path_factory.mktemp("toy")
    rng = random.Random(0)
    lines = []
    for i in range(200):
        seq = "".join(rng.choice(["HHH", "P", "X", "PX"]) for _ in range(12))[:12].ljust(12, "P")
        lines += [f">toy_{i}", seq]
    fasta = work / "toy.fasta"
    fasta.write_text("\n".join(lines) + "\n")
    cfg = compose_run("train", "stage=pretrain", f"data.path={fasta}", "trainer.max_steps=40",
                      f"output_dir={work / 'pretrain'}")
    pretrained = train.run_pretrain(cfg, Path(cfg.output_dir))
    cfg = compose_run("train", "stage=value", f"diffusion.checkpoint={pretrained}", "value_training.num_rollouts=32",
                      "value_training.rollout_batch_size=16", "value_training.batch_size=32", "trainer.max_steps=20",
                      "value_training.val_check_interval=10", f"output_dir={work / 'value'}")
    value = train.run_value(cfg, Path(cfg.output_dir))
    return work, pretrained, value


@pytest.mark.parametrize("decoder", DECODERS)
def test_toy_domain_decodes_with_every_decoder(decoder, trained):
    work, pretrained, value = trained
    out = work / f"decode-{decoder}"
    learned = [f"value.checkpoint={value}"] if decoder in ("svdd_mc", "dps") else []
    cfg = compose_run("decode", f"decoder={decoder}", f"diffusion.checkpoint={pretrained}", *learned,
                      "num_samples=8", "batch_size=4", f"output_dir={out}")
    summary = run_decode(cfg)
    assert summary["domain"] == "toy" and summary["reward"] == "hydrophobic_fraction"
    assert summary["decoder"] == decoder and summary["num_samples"] == 8
    rows = (out / "samples.csv").read_text().splitlines()[1:]
    assert len(rows) == 8
    for row in rows:
        _, sequence, reward = row.split(",")
        assert len(sequence) == 12 and set(sequence) <= set("HPX")
        assert float(reward) == pytest.approx(sequence.count("H") / 12, abs=1e-6)  # the user's function scored it
    native = (out / "samples.toy").read_text().splitlines()
    assert len(native) == 8 and native[0].split("\t")[1] == rows[0].split(",")[1]
    assert "mean_longest_run" in summary["naturalness"] and "unique_fraction" in summary["naturalness"]
    assert (out / "reward_hist.png").is_file() and (out / "samples_positions.png").is_file()
    assert json.loads((out / "summary.json").read_text())["calls_per_sample"]["total"] > 0
