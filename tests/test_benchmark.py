"""benchmark.py: bootstrap intervals, the interval-aware ordering checks, the tables, and one
end-to-end run on the fastest task (table, scaling comparison, W&B runs, --report_only)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from svdd_lightning.tasks.benchmark_plan import DECODERS as BENCH_DECODERS
from svdd_lightning.tasks.benchmark_plan import QUICK
from svdd_lightning.tasks.benchmark_report import ordering_checks, table1
from svdd_lightning.tasks.benchmark_rows import FAILED, OK, SKIPPED, read_row, skipped
from svdd_lightning.tasks.benchmark_run import run_one, run_scaling
from svdd_lightning.stats import bootstrap_ci, compare, intervals_overlap, point
from tests.helpers import run


def row(decoder, median, q90, domain="dna", reward="hepg2_motif", median_ci=None, q90_ci=None):
    return {"domain": domain, "reward": reward, "decoder": decoder, "status": OK, "median": median, "q90": q90,
            "median_ci": median_ci or [median - 0.1, median + 0.1], "q90_ci": q90_ci or [q90 - 0.1, q90 + 0.1]}


def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_more_samples():
    rng = np.random.default_rng(1)
    widths = {}
    for n in (32, 512):
        x = rng.normal(size=n)
        for stat in ("median", "q90"):
            lo, hi = bootstrap_ci(x, stat)
            assert lo <= point(x, stat) <= hi
            widths[stat, n] = hi - lo
        assert bootstrap_ci(x, "median") == bootstrap_ci(x, "median")  # fixed seed: the same interval each time
    assert widths["median", 512] < widths["median", 32] / 2 and widths["q90", 512] < widths["q90", 32] / 2
    assert bootstrap_ci([0.5], "median") == [0.5, 0.5] and bootstrap_ci([2.0] * 8, "q90") == [2.0, 2.0]


def test_interval_overlap_and_comparison():
    assert intervals_overlap([0, 1], [1, 2]) and intervals_overlap([0, 3], [1, 2]) and intervals_overlap([1, 2], [0, 3])
    assert not intervals_overlap([0, 1], [1.01, 2])
    assert compare([2, 3], [0, 1]) == "beats" and compare([0, 1], [2, 3]) == "is beaten by"
    assert compare([0, 2], [1, 3]) == "not distinguishable"


def test_ordering_checks_read_the_intervals():
    tasks = [("dna", "hepg2_motif")]
    good = [row("pretrained", 1.0, 2.0), row("best_of_n", 1.5, 2.5), row("svdd_pm", 2.5, 3.0)]
    check = ordering_checks(good, tasks)[0]
    assert check["verdict"] == "holds" and check["holds"] and [c["result"] for c in check["comparisons"]] == ["beats"] * 3
    # Medians in the right order but Best-of-N's interval overlaps pre-trained's: no claim either way.
    close = [row("pretrained", 1.0, 2.0), row("best_of_n", 1.1, 2.5, median_ci=[0.8, 1.4]), row("svdd_pm", 2.5, 3.0)]
    check = ordering_checks(close, tasks)[0]
    assert check["verdict"] == "not distinguishable" and not check["holds"]
    assert check["comparisons"][1]["result"] == "not distinguishable" and "not distinguishable" in check["detail"]
    reversed_ = [row("pretrained", 1.0, 2.0), row("best_of_n", 0.5, 2.5), row("svdd_pm", 2.5, 3.0)]
    assert ordering_checks(reversed_, tasks)[0]["verdict"] == "does not hold"
    below_q90 = [row("pretrained", 1.0, 2.0), row("best_of_n", 1.5, 2.5), row("svdd_pm", 1.7, 3.0)]
    assert ordering_checks(below_q90, tasks)[0]["comparisons"][2]["result"] == "is beaten by"


def test_table_shows_intervals_and_marks_skipped_runs_not_available():
    rows = [row("pretrained", 1.0, 2.0, median_ci=[0.9, 1.2]), skipped(row("svdd_mc", 0, 0), "no value")]
    line = table1(rows, [("dna", "hepg2_motif")], "median")[2]
    assert "1.000 [0.900, 1.200]" in line and line.count("n/a") == len(BENCH_DECODERS) - 1
    assert "2.000 [1.900, 2.100]" in table1(rows, [("dna", "hepg2_motif")], "q90")[2]


def test_rows_of_older_benchmark_files_are_read_as_typed_rows():
    """read_row is the one reader of rows written before rows had a status: a 'skipped' reason (with 'failed: true'
    for a run that raised) becomes status and reason; calls from 'nfe', wall time per sample and budget filled."""
    old = {"domain": "dna", "reward": "qed", "decoder": "svdd_mc", "num_candidates": 5, "num_samples": 4,
           "wall_seconds": 2.0, "nfe": {"denoiser": 10, "value": 5, "reward": 0}}
    ok = read_row(old, default_budget=10)
    assert ok["status"] == OK and ok["budget"] == 5 and ok["wall_seconds_per_sample"] == 0.5
    assert ok["calls_per_sample"] == {"denoiser": 10.0, "value": 5.0, "reward": 0.0, "total": 15.0}
    gone = read_row({"domain": "dna", "decoder": "svdd_mc", "skipped": "no value"}, default_budget=10)
    assert (gone["status"], gone["reason"], gone["budget"]) == (SKIPPED, "no value", 10) and "skipped" not in gone
    broke = read_row({"decoder": "smc", "skipped": "FAILED: ValueError: x", "failed": True}, default_budget=10)
    assert broke["status"] == FAILED and "failed" not in broke
    current = skipped({"decoder": "dps", "budget": 1}, "no gradient")
    assert read_row(current, default_budget=10) == current  # this version's rows are read as written


def test_scaling_plan_reuses_table_rows_and_skips_what_cannot_scale(tmp_path):
    """Pre-trained and DPS get one point; a table row with the point's settings is reused; a method
    the table skipped is skipped at every budget; one whose calls do not grow with the budget is
    skipped from there on, without further runs."""
    mode = replace(QUICK, tasks=(("dna", "hepg2_motif"),), scaling_budgets=(1, 2, 4), scaling_samples=8,
                   scaling_batch_size=8)
    calls = []

    def fake_run(*, domain, reward, decoder, num_samples, batch_size, num_candidates, seed, run_dir):
        calls.append((decoder, num_candidates))
        cost = 100.0 if decoder == "smc" else 100.0 * num_candidates  # this SMC ignores the budget
        return {"domain": domain, "reward": reward, "decoder": decoder, "budget": num_candidates,
                "num_samples": num_samples, "batch_size": batch_size, "seed": seed, "status": OK, "median": 1.0,
                "median_ci": [0.9, 1.1], "q90": 2.0, "q90_ci": [1.9, 2.1], "calls_per_sample": {"total": cost},
                "wall_seconds_per_sample": 0.1}

    table = [{**fake_run(domain="dna", reward="hepg2_motif", decoder=d, num_samples=8, batch_size=8,
                         num_candidates=2, seed=0, run_dir=None)} for d in ("pretrained", "best_of_n")]
    table.append(skipped({"domain": "dna", "reward": "hepg2_motif", "decoder": "svdd_mc", "budget": 2}, "no value"))
    calls.clear()
    rows = run_scaling(mode, ["pretrained", "best_of_n", "smc", "svdd_mc"], table, seed=0, out=tmp_path, run=fake_run)
    got = {(r["decoder"], r["budget"]): r for r in rows}
    assert list(got) == [("pretrained", 1), ("best_of_n", 1), ("best_of_n", 2), ("best_of_n", 4), ("smc", 1),
                         ("smc", 2), ("smc", 4), ("svdd_mc", 1), ("svdd_mc", 2), ("svdd_mc", 4)]
    assert calls == [("best_of_n", 1), ("best_of_n", 4), ("smc", 1), ("smc", 2)]  # the rest reused or skipped
    assert "reused" in got["pretrained", 1] and "reused" in got["best_of_n", 2]
    assert "ignores decoder.num_candidates" in got["smc", 2]["reason"] and got["smc", 4]["reason"] == got["smc", 2]["reason"]
    assert all(got["svdd_mc", b]["reason"] == "no value" for b in (1, 2, 4))
    assert {r["status"] for key, r in got.items() if key[0] in ("svdd_mc", "smc") and key[1] > 1} == {SKIPPED}


def test_svdd_r_is_skipped_where_its_batch_is_too_small_to_resample(tmp_path):
    r = run_one(domain="dna", reward="hepg2_motif", decoder="svdd_r", num_samples=8, batch_size=8, num_candidates=2,
                seed=0, run_dir=tmp_path / "r")
    assert r["status"] == SKIPPED and "too small" in r["reason"] and "repeat svdd_pm" in r["reason"]


DECODERS = ["pretrained", "best_of_n", "dps", "svdd_pm"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One tiny benchmark: the image task, 4 samples, M = 2, budgets 1 and 2, W&B offline."""
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench"
    run("benchmark.py", "--quick", "--tasks", "image/compressibility", "--decoders", *DECODERS, "--num_samples", "4",
        "--num_candidates", "2", "--budgets", "1", "2", "--logger", "wandb", "--output_dir", str(out), tmp=tmp)
    return out


def test_benchmark_rows_carry_intervals_calls_and_wall_time(bench):
    data = json.loads((bench / "benchmark.json").read_text())
    assert [r["decoder"] for r in data["rows"]] == DECODERS
    assert data["bootstrap"]["method"] == "percentile" and data["bootstrap"]["n_resamples"] == 2000
    for r in data["rows"]:
        assert {"domain", "reward", "decoder", "budget", "median", "q90", "median_ci", "q90_ci", "nfe", "calls",
                "calls_per_sample", "wall_seconds", "wall_seconds_per_sample", "naturalness"} <= set(r)
        # One record of calls, as summary.json's; calls_per_sample is its asked-for part (older spelling).
        assert r["calls"]["per_sample"]["asked"] == pytest.approx(r["calls_per_sample"])
        assert r["calls"]["per_sample"]["made"]["total"] <= r["calls"]["per_sample"]["asked"]["total"]
        assert r["num_samples"] == 4 and r["budget"] == 2
        assert r["median_ci"][0] <= r["median"] <= r["median_ci"][1] and r["q90_ci"][0] <= r["q90"] <= r["q90_ci"][1]
        calls = r["calls_per_sample"]
        assert calls["total"] == calls["denoiser"] + calls["value"] + calls["reward"]
        assert r["wall_seconds_per_sample"] == pytest.approx(r["wall_seconds"] / 4, abs=1e-3)  # both rounded
    by = {r["decoder"]: r for r in data["rows"]}
    assert by["best_of_n"]["calls_per_sample"]["denoiser"] == 2 * 50  # N = M chains, T = 50 steps
    assert by["svdd_pm"]["calls_per_sample"]["denoiser"] == 1 + 49 * 2
    assert "value" in by["dps"]["settings"]["guided_by"]  # JPEG size has no gradient: the learned value guides
    assert {c["verdict"] for c in data["checks"]} <= {"holds", "does not hold", "not distinguishable"}
    md = (bench / "benchmark.md").read_text()
    assert "| image / compressibility |" in md and "n/a" in md  # svdd_mc, smc and svdd_r were not asked for
    assert "not distinguishable" in md and "Inference-time scaling" in md
    assert (bench / "boxplots.png").stat().st_size > 0


def test_benchmark_scaling_rows_and_plot(bench):
    data = json.loads((bench / "benchmark.json").read_text())
    points = {(r["decoder"], r["budget"]): r for r in data["scaling"]}
    # pre-trained and DPS draw once per step: one point; the others at every budget.
    assert set(points) == {("pretrained", 1), ("dps", 1), ("best_of_n", 1), ("best_of_n", 2),
                           ("svdd_pm", 1), ("svdd_pm", 2)}
    for r in points.values():
        assert r["status"] == OK and r["num_samples"] == 4
        assert {"median", "median_ci", "q90", "q90_ci", "calls_per_sample", "wall_seconds_per_sample"} <= set(r)
    assert points["best_of_n", 2]["calls_per_sample"]["denoiser"] == 2 * points["best_of_n", 1]["calls_per_sample"]["denoiser"]
    assert (bench / "scaling_image_compressibility.png").stat().st_size > 10_000


def read_offline_run(path):
    """(group, config, summary) of one offline W&B run file, once W&B has written it whole."""
    from callbacks.wandb_offline import read_finished_run, record_type

    group, config, summary = None, {}, {}
    for record in read_finished_run(path):
        kind = record_type(record)
        if kind == "run":
            group = record.run.run_group
            config.update({u.key: json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "summary":
            summary.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.summary.update})
    return group, {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}, summary


def test_benchmark_logs_one_wandb_run_per_cell_in_one_group(bench):
    data = json.loads((bench / "benchmark.json").read_text())
    files = sorted((bench / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == len(data["rows"]) + len(data["scaling"]) == data["wandb"]["runs"]
    runs = [read_offline_run(f) for f in files]
    assert {g for g, _, _ in runs} == {data["wandb"]["group"]} and data["wandb"]["group"].startswith("bench-")
    cells = sorted((c["part"], c["decoder"], c["budget"]) for _, c, _ in runs)
    assert cells == sorted([("table", r["decoder"], r["budget"]) for r in data["rows"]] +
                           [("scaling", r["decoder"], r["budget"]) for r in data["scaling"]])
    for _, config, summary in runs:
        assert {"domain", "reward", "decoder", "budget", "seed", "num_samples"} <= set(config)
        assert config["domain"] == "image" and config["num_samples"] == 4
        assert {"median", "q90", "median_ci", "q90_ci", "calls", "calls_per_sample", "wall_seconds", "naturalness",
                "reward/histogram/values"} <= set(summary)
        assert sum(summary["reward/histogram/values"]) == 4


def test_report_only_redraws_the_scaling_plots(bench):
    before = json.loads((bench / "benchmark.json").read_text())
    for name in ("benchmark.md", "scaling_image_compressibility.png", "boxplots.png"):
        (bench / name).unlink()
    run("benchmark.py", "--report_only", "--output_dir", str(bench), tmp=bench.parent)
    after = json.loads((bench / "benchmark.json").read_text())
    assert after["rows"] == before["rows"] and after["scaling"] == before["scaling"]
    assert (bench / "scaling_image_compressibility.png").stat().st_size > 10_000
    assert "Inference-time scaling" in (bench / "benchmark.md").read_text()


@pytest.mark.slow  # three small benchmarks in this process, ~1 min; `make test-slow`
def test_a_sigtermed_benchmark_stops_inside_a_cell_and_resumes_to_the_same_rows(tmp_path, monkeypatch, capsys):
    """SIGTERM once the first cell is done (sent to this process, so no timing is involved): the next cell stops at
    its first denoising step, exit 143 with one resume line, the finished cell stays; rerunning the same command
    reuses it, finishes the rest, and every row equals an uninterrupted benchmark's (wall times aside)."""
    import os
    import signal

    import benchmark
    from svdd_lightning.tasks import benchmark as command

    def args(out):
        return ["--quick", "--tasks", "image/compressibility", "--decoders", "pretrained", "best_of_n", "svdd_pm",
                "--num_samples", "4", "--num_candidates", "2", "--no_scaling", "--logger", "none", "--output_dir", str(out)]

    assert benchmark.main(args(tmp_path / "whole")) == 0
    real_run_one = command.run_one
    calls = []

    def run_one_then_sigterm(**kwargs):
        row = real_run_one(**kwargs)
        calls.append(kwargs["decoder"])
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by benchmark.main's stop_on_signals
        return row

    out = tmp_path / "stopped"
    monkeypatch.setattr(command, "run_one", run_one_then_sigterm)
    capsys.readouterr()
    assert benchmark.main(args(out)) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert sum("to resume, run the same command again" in line for line in err.splitlines()) == 1
    assert calls == ["pretrained"] and not (out / "benchmark.json").exists()  # the second cell stopped inside
    assert (out / "runs" / "image-compressibility-pretrained" / "cell.json").exists()
    stopped = out / "runs" / "image-compressibility-best_of_n"
    assert (stopped / ".shards" / "run.json").exists() and not (stopped / "summary.json").exists()
    monkeypatch.setattr(command, "run_one", real_run_one)
    assert benchmark.main(args(out)) == 0

    def comparable(path):
        timing = ("wall", "seconds", "output_dir")
        return [{k: v for k, v in r.items() if not any(t in k for t in timing)}
                for r in json.loads((path / "benchmark.json").read_text())["rows"]]

    assert comparable(out) == comparable(tmp_path / "whole")


def test_call_matched_winners_take_each_methods_best_point_within_the_cap():
    from svdd_lightning.tasks.benchmark_report import call_matched_winners

    def point(decoder, budget, calls, median, ci):
        return {"domain": "dna", "reward": "r", "decoder": decoder, "budget": budget, "status": "ok",
                "calls_per_sample": {"total": calls}, "median": median, "median_ci": ci}

    scaling = [point("best_of_n", 1, 129, 5.0, [4.5, 5.5]), point("best_of_n", 2, 258, 6.0, [5.6, 6.4]),
               point("svdd_pm", 1, 257, 5.2, [4.9, 5.9]), point("svdd_pm", 2, 510, 9.0, [8.5, 9.5]),
               point("tree", 2, 257, 5.9, [5.0, 6.2])]
    first, second = call_matched_winners(scaling, "dna", "r")
    assert first["calls"] == 129 and first["leader"]["decoder"] == "best_of_n" and first["tied"] == []
    # within 258 calls: SVDD-PM's budget-2 point (510) is out, its budget-1 point (257) is in and overlaps
    assert second["leader"]["decoder"] == "best_of_n" and sorted(second["tied"]) == ["svdd_pm", "tree"]


def test_every_decoder_with_candidates_scales_over_budgets():
    """A decoder config that inherits num_candidates (tree_search from tree) must still get the scaling budgets,
    not the single point of pre-trained sampling and DPS."""
    from svdd_lightning.tasks.benchmark_plan import DECODERS, single_point

    assert [d for d in DECODERS if single_point(d)] == ["pretrained", "dps"]
