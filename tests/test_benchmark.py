"""benchmark.py: the table, the ordering checks and an end-to-end run on the fastest task."""

import json

from benchmark import ordering_checks, table1
from tests.helpers import run


def row(decoder, median, q90, domain="dna", reward="hepg2_motif"):
    return {"domain": domain, "reward": reward, "decoder": decoder, "median": median, "q90": q90}


def test_ordering_checks_hold_only_for_the_paper_shape():
    good = [row("pretrained", 1.0, 2.0), row("best_of_n", 1.5, 2.5), row("svdd_pm", 2.5, 3.0)]
    bad_order = [row("pretrained", 1.0, 2.0), row("best_of_n", 0.5, 2.5), row("svdd_pm", 2.5, 3.0)]
    below_q90 = [row("pretrained", 1.0, 2.0), row("best_of_n", 1.5, 2.5), row("svdd_pm", 1.8, 3.0)]
    tasks = [("dna", "hepg2_motif")]
    assert ordering_checks(good, tasks)[0][1]
    assert not ordering_checks(bad_order, tasks)[0][1]
    assert not ordering_checks(below_q90, tasks)[0][1]


def test_table_marks_skipped_runs_not_available():
    rows = [row("pretrained", 1.0, 2.0), {**row("svdd_mc", 0, 0), "skipped": "no value"}]
    line = table1(rows, [("dna", "hepg2_motif")])[2]
    assert "1.000 / 2.000" in line and line.count("n/a") == 6


def test_benchmark_end_to_end_on_images(tmp_path):
    out = tmp_path / "bench"
    run("benchmark.py", "--quick", "--tasks", "image/compressibility", "--decoders", "pretrained", "best_of_n",
        "svdd_pm", "smc", "dps", "--num_samples", "4", "--num_candidates", "2", "--no_ablation",
        "--output_dir", str(out), tmp=tmp_path)
    data = json.loads((out / "benchmark.json").read_text())
    assert [r["decoder"] for r in data["rows"]] == ["pretrained", "best_of_n", "dps", "smc", "svdd_pm"]
    for r in data["rows"]:
        assert {"domain", "reward", "decoder", "median", "q90", "nfe", "wall_seconds", "naturalness"} <= set(r)
        assert r["num_samples"] == 4
    by = {r["decoder"]: r for r in data["rows"]}
    assert by["best_of_n"]["nfe"]["denoiser"] == 2 * 50  # N = M chains, T = 50 steps
    assert by["svdd_pm"]["nfe"]["denoiser"] == 1 + 49 * 2
    assert "value" in by["dps"]["settings"]["guided_by"]  # JPEG size has no gradient: the learned value guides
    md = (out / "benchmark.md").read_text()
    assert "| image / compressibility |" in md and "n/a" in md  # svdd_mc and svdd_r were not asked for
    assert (out / "boxplots.png").stat().st_size > 0
