"""A new decoder is one module and one YAML: tests/toy_decoder.py and tests/configs/decoder/last_step_best.yaml,
with no line of svdd_lightning/ written for it. It decodes through decode.py (hydra.searchpath), through
svdd_lightning.decode (search_path=) and through benchmark.py (--search_path), and its calls are measured like
every decoder's: the budget it declares (asked) against the rows that really passed (made)."""

import csv
import json

import pytest
from hydra import compose, initialize_config_dir

import svdd_lightning as svdd
from svdd_lightning.errors import ConfigError
from tests.helpers import ROOT, run

CONFIGS = ROOT / "tests" / "configs"
SEARCHPATH = f"hydra.searchpath=[file://{CONFIGS}]"
NUM_SAMPLES, M, STEPS = 4, 3, 16  # a short grid: the plumbing is tested, not the rewards


def decode_cli(tmp_path, *options):
    out = tmp_path / "cli"
    run("decode.py", SEARCHPATH, "decoder=last_step_best", f"decoder.num_candidates={M}", f"num_samples={NUM_SAMPLES}",
        f"batch_size={NUM_SAMPLES}", f"steps={STEPS}", "compute_naturalness=false", "logger=none", f"output_dir={out}",
        "trainer.enable_progress_bar=false", *options, tmp=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "samples.csv") as handle:
        return summary, [row["sample"] for row in csv.DictReader(handle)]


def test_decode_py_runs_it_and_measures_its_calls(tmp_path):
    summary, _ = decode_cli(tmp_path, "decoder.dedup=false")
    steps = summary["steps"]
    assert summary["decoder"] == "last_step_best" and summary["decoder_settings"]["num_candidates"] == M
    # Its budget: the pre-trained sampler's denoiser calls (one per step and sample), M rewards per sample at the end.
    asked = summary["calls"]["asked"]
    assert (asked["denoiser"], asked["value"], asked["reward"]) == (steps * NUM_SAMPLES, 0, M * NUM_SAMPLES)
    assert summary["calls"]["made"] == asked  # dedup off: every row asked for passes through the networks


@pytest.fixture(scope="module")
def dedup_on(tmp_path_factory):
    return decode_cli(tmp_path_factory.mktemp("toy_decoder"))


def test_dedup_makes_fewer_calls_than_it_asks(dedup_on):
    summary, _ = dedup_on  # DNA's last step is an argmax, so its M candidates are equal and scored once
    made, asked = summary["calls"]["made"], summary["calls"]["asked"]
    assert asked["reward"] == M * NUM_SAMPLES and made["reward"] == NUM_SAMPLES
    assert made["denoiser"] <= asked["denoiser"]


def test_the_python_api_finds_it_by_name_and_gives_the_cli_samples(dedup_on):
    from svdd_lightning.build import build_diffusion, build_domain, build_reward

    _, cli_texts = dedup_on
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("decode", overrides=["logger=none", f"steps={STEPS}"])
    domain = build_domain(cfg)
    diffusion, reward = build_diffusion(cfg, domain), build_reward(cfg, domain)
    result = svdd.decode(diffusion=diffusion, reward=reward, domain=domain, decoder="last_step_best",
                         search_path=[CONFIGS], decoder_options={"num_candidates": M}, num_samples=NUM_SAMPLES,
                         batch_size=NUM_SAMPLES, naturalness=False, seed=0)
    assert result.summary["decoder"] == "last_step_best"
    assert result.summary["calls"]["asked"]["reward"] == M * NUM_SAMPLES
    assert result.texts == cli_texts  # token model: the same samples, bitwise, from the CLI and from Python
    with pytest.raises(ConfigError, match="last_step_best.*unknown|unknown.*search_path"):
        svdd.decode(diffusion=diffusion, reward=reward, domain=domain, decoder="last_step_best", num_samples=1)


def test_benchmark_runs_it_beside_the_library_decoders(tmp_path):
    out = tmp_path / "bench"
    run("benchmark.py", "--quick", "--tasks", "dna/hepg2_motif", "--decoders", "pretrained", "last_step_best",
        "--search_path", str(CONFIGS), "--num_samples", str(NUM_SAMPLES), "--no_scaling", "--logger", "none",
        "--output_dir", str(out), tmp=tmp_path)
    data = json.loads((out / "benchmark.json").read_text())
    rows = {r["decoder"]: r for r in data["rows"]}
    assert set(rows) == {"pretrained", "last_step_best"} and rows["last_step_best"]["status"] == "ok"
    assert rows["last_step_best"]["calls"]["asked"]["reward"] > rows["pretrained"]["calls"]["asked"]["reward"]
    header = next(line for line in (out / "benchmark.md").read_text().splitlines() if line.startswith("| Task |"))
    assert header.rstrip(" |").endswith("last_step_best")  # a column after the library's methods
    refused = run("benchmark.py", "--quick", "--decoders", "last_step_best", "--output_dir", str(tmp_path / "no"),
                  tmp=tmp_path, check=False)
    assert refused.returncode == 2 and "--search_path" in refused.stderr
