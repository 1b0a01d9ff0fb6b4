"""The package stands alone: `pip install .` into a fresh venv and the Python API decodes from outside the
checkout, given the path of the shipped DNA checkpoint (slow: builds a venv; `make test-slow`)."""

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


@pytest.mark.slow
def test_pip_install_outside_the_checkout(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Built from a copy: pip builds in the source folder, which must stay clean.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "svdd_lightning", source / "svdd_lightning",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), str(source)], check=True, cwd=tmp_path)
    outside = tmp_path / "notebook"
    outside.mkdir()
    (outside / "use_api.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(venv / "bin" / "python"), "use_api.py", str(ROOT / "checkpoints/dna/pretrained.ckpt")],
                          cwd=outside, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "site-packages" in out["file"]
    assert len(out["texts"]) == 4 and all(len(t) == 200 and set(t) <= set("ACGT") for t in out["texts"])
    gc = [(t.count("G") + t.count("C")) / 200 for t in out["texts"]]
    assert out["rewards"] == pytest.approx(gc)
