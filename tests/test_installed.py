"""The package stands alone: `pip install .` into a fresh venv, and from outside the checkout the Python API
decodes and the console scripts train a value and decode with it, given the path of the shipped DNA checkpoint
(slow: builds a venv; `make test-slow`)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r'''
import json, sys
import svdd_lightning as svdd

def gc_fraction(sequences):
    return [(s.count("G") + s.count("C")) / len(s) for s in sequences]

diffusion = svdd.load_diffusion(sys.argv[1], num_steps=16)  # the checkpoint records its model
result = svdd.decode(diffusion=diffusion, reward=gc_fraction, domain=svdd.NucleotideDomain(alphabet="ACGT"),
                     decoder="svdd_pm", decoder_options={"num_candidates": 4}, num_samples=4, batch_size=4, seed=0,
                     trainer=None)
print(json.dumps({"file": svdd.__file__, "texts": result.texts, "rewards": result.rewards.tolist(),
                  "median": result.summary["reward_stats"]["median"]}))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with `pip install .` of a copy of the package and the folders the wheel ships with it."""
    tmp_path = tmp_path_factory.mktemp("installed")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Built from a copy: pip builds in the source folder, which must stay clean. copytree follows the
    # svdd_lightning/configs link, as a wheel holds the files.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    for folder in ("svdd_lightning", "callbacks", "datamodules"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), str(source)], check=True, cwd=tmp_path)
    return venv


def run_outside(venv: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([*command], cwd=cwd, capture_output=True, text=True,
                          env={**env, "OMP_NUM_THREADS": "1", "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"})


@pytest.mark.slow
def test_pip_install_outside_the_checkout(installed, tmp_path):
    (tmp_path / "use_api.py").write_text(SCRIPT)
    proc = run_outside(installed, tmp_path, str(installed / "bin" / "python"), "use_api.py",
                       str(ROOT / "checkpoints/dna/pretrained.ckpt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "site-packages" in out["file"]
    assert len(out["texts"]) == 4 and all(len(t) == 200 and set(t) <= set("ACGT") for t in out["texts"])
    gc = [(t.count("G") + t.count("C")) / 200 for t in out["texts"]]
    assert out["rewards"] == pytest.approx(gc)


@pytest.mark.slow
def test_the_installed_commands_train_a_value_and_decode_with_it(installed, tmp_path):
    """svdd-train stage=value and svdd-decode from a folder that is not the checkout: the configs, datamodules
    and callbacks come from the wheel; only the pre-trained checkpoint is named by its path."""
    pretrained = f"diffusion.checkpoint={ROOT / 'checkpoints/dna/pretrained.ckpt'}"
    tiny = ["steps=4", "value_network.channels=8", "value_network.num_layers=2", "trainer.enable_progress_bar=false",
            "logger=none"]
    train = run_outside(installed, tmp_path, "svdd-train", "stage=value", pretrained, "value_training.num_rollouts=8",
                        "value_training.rollout_batch_size=4", "value_training.batch_size=8", "trainer.max_steps=3",
                        "output_dir=value", *tiny)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "value" / "value.ckpt").is_file()
    decode = run_outside(installed, tmp_path, "svdd-decode", "decoder=svdd_mc", pretrained,
                         f"value.checkpoint={tmp_path / 'value' / 'value.ckpt'}",
                         "num_samples=4", "batch_size=4", "output_dir=decoded", *tiny)
    assert decode.returncode == 0, decode.stderr[-3000:]
    summary = json.loads((tmp_path / "decoded" / "summary.json").read_text())
    assert summary["num_samples"] == 4 and summary["decoder"] == "svdd_mc"
