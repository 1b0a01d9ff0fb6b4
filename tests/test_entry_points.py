"""End-to-end runs of train.py (each stage) and decode.py on tiny settings, as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from Bio import SeqIO

from tests.helpers import TINY, run

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def fasta(workdir) -> Path:
    import random

    rng = random.Random(0)
    path = workdir / "train.fa"
    with open(path, "w") as f:
        for i in range(40):
            f.write(f">seq{i}\n{''.join(rng.choice('ACGT') for _ in range(120))}\n")
    return path


@pytest.fixture(scope="module")
def pretrained(workdir, fasta) -> Path:
    out = workdir / "pretrain"
    run("train.py", "stage=pretrain", f"data.path={fasta}", "data.batch_size=16", "trainer.max_steps=3",
        "pretrain.val_check_interval=2", f"output_dir={out}", *TINY, tmp=workdir)
    assert (out / "heldout_3mer.json").is_file()
    return out / "pretrained.ckpt"


@pytest.fixture(scope="module")
def value_ckpt(workdir, pretrained) -> Path:
    out = workdir / "value"
    run("train.py", "stage=value", f"diffusion.checkpoint={pretrained}", "value_training.num_rollouts=8",
        "value_training.rollout_batch_size=4", "value_training.batch_size=8", "value_training.save_every=1",
        "trainer.max_steps=3", f"output_dir={out}", *TINY, tmp=workdir)
    return out / "value.ckpt"


def test_pretrain_checkpoint_is_small_and_tagged(pretrained):
    import torch

    assert pretrained.stat().st_size < 1_000_000  # weights only: no optimizer state
    ckpt = torch.load(pretrained, weights_only=False)
    model = ckpt["svdd"].pop("model")  # the checkpoint knows its model: the sizes it was trained with (TINY)
    assert ckpt["svdd"] == {"kind": "diffusion", "domain": "dna"}
    assert (model["seq_len"], model["num_steps"]) == (24, 4)
    assert (model["network"]["channels"], model["network"]["num_layers"]) == (8, 2)
    assert "optimizer_states" not in ckpt or not ckpt["optimizer_states"]
    assert any(k.startswith("diffusion.network.") for k in ckpt["state_dict"])


def test_a_trained_checkpoint_alone_rebuilds_its_model(pretrained):
    import svdd_lightning as svdd

    diffusion = svdd.load_diffusion(pretrained)
    assert (diffusion.seq_len, diffusion.num_steps, diffusion.network.init_arguments["channels"]) == (24, 4, 8)


def test_value_stage_writes_rollouts_and_value_only_weights(value_ckpt):
    import torch

    rollouts = torch.load(value_ckpt.parent / "rollouts.pt", weights_only=False)
    assert rollouts["states"].shape[:2] == (8, 4) and rollouts["rewards"].shape == (8,)
    ckpt = torch.load(value_ckpt, weights_only=False)
    assert ckpt["svdd"]["kind"] == "value" and ckpt["svdd"]["reward"] == "hepg2_motif"
    assert all(k.startswith("value.") for k in ckpt["state_dict"]), "frozen diffusion weights leaked into the value"


@pytest.mark.parametrize("decoder", ["pretrained", "best_of_n", "svdd_pm", "svdd_mc"])
def test_decode_writes_interface_outputs(decoder, workdir, pretrained, value_ckpt):
    out = workdir / f"decode-{decoder}"
    args = [f"decoder={decoder}", f"diffusion.checkpoint={pretrained}", "num_samples=6", "batch_size=4",
            "seed=0", f"output_dir={out}", "logger=none", *TINY]
    if decoder != "pretrained":  # pre-trained sampling draws one sample per step: it has no num_candidates
        args.append("decoder.num_candidates=3")
    if decoder == "svdd_mc":
        args.append(f"value.checkpoint={value_ckpt}")
    proc = run("decode.py", *args, tmp=workdir)
    assert "median" in proc.stdout and str(out) in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for key in ("domain", "reward", "decoder", "num_samples", "num_candidates", "alpha", "steps", "seed",
                "reward_stats", "calls", "nfe", "wall_seconds", "naturalness"):
        assert key in summary, key
    assert summary["decoder"] == decoder and summary["num_samples"] == 6
    assert set(summary["reward_stats"]) == {"mean", "median", "q90", "min", "max"}
    rows = list(csv.DictReader(open(out / "samples.csv")))
    assert [int(r["index"]) for r in rows] == list(range(6))
    records = list(SeqIO.parse(out / "samples.fasta", "fasta"))
    assert [str(r.seq) for r in records] == [r["sample"] for r in rows]
    assert all(len(r.seq) == 24 for r in records)
    assert (out / "reward_hist.png").stat().st_size > 1000
    assert not list(out.glob("*.partial*")) and not (out / ".shards").exists()
    m = summary["num_candidates"]
    calls = summary["calls"]
    asked, made = calls["asked"], calls["made"]  # the algorithm's calls, and those measured
    assert all(made[k] <= asked[k] for k in asked)
    assert calls["per_sample"]["asked"] == pytest.approx({k: v / 6 for k, v in asked.items()})
    assert summary["nfe"] == {k: made[k] for k in ("denoiser", "value", "reward")}  # the deprecated spelling
    assert summary["distinct_fraction"] == pytest.approx(made["total"] / asked["total"], abs=1e-4)
    if decoder == "svdd_pm":
        assert asked["denoiser"] == 6 * (1 + (4 - 1) * m)
        assert asked["reward"] == 6 * ((4 - 1) * m + 1)  # the last step's one clean candidate: v_0 = r
    if decoder == "svdd_mc":
        # The value reads t = 4 .. 1 (M candidates at t - 1 = 3 .. 1); at t = 0 the reward scores the samples.
        assert asked["value"] == 6 * (4 - 1) * m and asked["denoiser"] == 6 * 4
        assert asked["reward"] == 6
    calls = summary["calls_per_sample"]
    assert calls["total"] == pytest.approx(sum(summary["nfe"].values()) / 6)
    assert summary["wall_seconds_per_sample"] > 0


def test_decode_logs_offline_wandb_run(workdir, pretrained):
    out = workdir / "decode-wandb"
    proc = run("decode.py", f"diffusion.checkpoint={pretrained}", "num_samples=4", f"output_dir={out}",
               "logger=wandb", "decoder.num_candidates=2", *TINY, tmp=workdir)
    assert "wandb sync" in proc.stdout
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    from callbacks.wandb_offline import read_history

    history = read_history(runs[0])
    hist = next(r for r in history if "reward/histogram/values" in r)
    assert sum(hist["reward/histogram/values"]) == 4 and hist["reward/count"] == 4
    table = next(r for r in history if "samples/nrows" in r)
    assert table["samples/nrows"] == 4
    guidance = [r for r in history if "guidance/value_mean" in r]
    assert len(guidance) == 4  # one row per denoising step (steps=4 in TINY)
    assert any("pictures/reward_hist/path" in r for r in history)
    assert (out / "samples_positions.png").stat().st_size > 1000
    assert (out / "samples_logo.png").stat().st_size > 1000  # the sequence logo, logged beside the other pictures
    assert any("pictures/samples_logo/path" in r for r in history)
    from tests.test_benchmark import read_offline_run

    _, _, run_summary = read_offline_run(runs[0])  # the same calls record as summary.json's
    assert run_summary["calls"] == json.loads((out / "summary.json").read_text())["calls"]


def test_missing_checkpoint_is_a_clear_error(workdir):
    out = workdir / "decode-missing"
    proc = run("decode.py", "diffusion.checkpoint=/nonexistent/model.ckpt", f"output_dir={out}", "logger=none",
               *TINY, tmp=workdir, check=False)
    assert proc.returncode == 2
    assert "/nonexistent/model.ckpt does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "summary.json").exists()


def test_value_checkpoint_as_diffusion_is_a_clear_error(workdir, value_ckpt):
    proc = run("decode.py", f"diffusion.checkpoint={value_ckpt}", f"output_dir={workdir / 'decode-wrong'}",
               "logger=none", *TINY, tmp=workdir, check=False)
    assert proc.returncode == 2 and "holds a value model" in proc.stderr


def test_unknown_stage_is_a_clear_error(workdir):
    proc = run("train.py", "stage=finetune", f"output_dir={workdir / 'bad'}", tmp=workdir, check=False)
    assert proc.returncode == 2 and "stage=finetune is unknown" in proc.stderr


@pytest.mark.slow
def test_ddp_two_processes_give_the_same_samples_as_one(workdir, pretrained):
    outs = {}
    for devices in (1, 2):
        out = workdir / f"decode-ddp{devices}"
        extra = ["trainer.strategy=ddp", "logger=wandb"] if devices == 2 else ["logger=none"]
        run("decode.py", f"diffusion.checkpoint={pretrained}", "num_samples=10", "batch_size=4", "seed=3",
            "decoder.num_candidates=4", f"output_dir={out}", "trainer.accelerator=cpu",
            f"trainer.devices={devices}", *extra, *TINY, tmp=workdir)
        outs[devices] = (out / "samples.csv").read_text()
        assert json.loads((out / "summary.json").read_text())["devices"] == devices
    assert outs[1] == outs[2]
    # The W&B histogram of the 2-process run counts every sample exactly once.
    from callbacks.wandb_offline import read_history

    runs = list((workdir / "decode-ddp2" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    hist = next(r for r in read_history(runs[0]) if "reward/histogram/values" in r)
    assert sum(hist["reward/histogram/values"]) == 10 and hist["reward/count"] == 10


def test_reward_of_another_domain_is_a_clear_error(workdir):
    proc = run("decode.py", "reward=mfe", f"output_dir={workdir / 'bad-reward'}", "logger=none", tmp=workdir,
               check=False)
    assert proc.returncode == 2 and "reward=mfe is not a reward of domain 'dna'" in proc.stderr


def test_user_reward_class_plugs_in(workdir, pretrained):
    """reward._target_ swaps in any class following the Reward contract; the pipeline runs unchanged."""
    out = workdir / "decode-user-reward"
    run("decode.py", "reward._target_=tests.user_reward.ATContent", f"diffusion.checkpoint={pretrained}",
        "num_samples=4", "decoder.num_candidates=2", f"output_dir={out}", "logger=none", *TINY, tmp=workdir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"] == "at_content"
    rows = list(csv.DictReader(open(out / "samples.csv")))
    for r in rows:
        at = sum(c in "AT" for c in r["sample"]) / len(r["sample"])
        assert abs(float(r["reward"]) - at) < 1e-4


def test_value_stage_renoise_reuses_rollouts(workdir, pretrained, value_ckpt):
    out = workdir / "value-renoise"
    run("train.py", "stage=value", f"diffusion.checkpoint={pretrained}",
        f"value_training.rollouts={value_ckpt.parent / 'rollouts.pt'}", "value_training.renoise=true",
        "value_training.batch_size=8", "trainer.max_steps=3", f"output_dir={out}", *TINY, tmp=workdir)
    assert (out / "value.ckpt").is_file() and not (out / "rollouts.pt").exists()


def test_renoised_states_match_the_rollout_mask_rate():
    """The reason renoising is exact for masked diffusion: a rollout's state at step t masks each
    position with probability t / T, independently of the tokens."""
    import torch

    from svdd_lightning import ops
    from tests.helpers import tiny_masked

    d = tiny_masked(seq_len=400, num_steps=8)
    gens = ops.make_generators(0, range(16))
    x = d.prior(16, gens)
    with torch.no_grad():
        for t in d.timesteps():
            if t == 4:
                rate = (x == d.mask_index).float().mean().item()
            x = d.step(x, t, gens).prev_sample
    assert abs(rate - 4 / 8) < 0.03


@pytest.fixture(scope="module")
def distilled(workdir, pretrained) -> Path:
    out = workdir / "distill"
    proc = run("train.py", "stage=distill", f"diffusion.checkpoint={pretrained}", "distill.rounds=2",
               "distill.steps_per_round=2", "distill.samples_per_round=4", "distill.states_per_trajectory=2",
               "distill.num_candidates=3", "distill.batch_size=4", f"output_dir={out}", "logger=none", *TINY,
               tmp=workdir)
    assert "distill round 2/2" in proc.stdout
    return out


def test_distill_stage_writes_a_tagged_checkpoint_and_its_rounds(distilled):
    import torch

    ckpt = torch.load(distilled / "distilled.ckpt", weights_only=False)
    assert ckpt["svdd"]["kind"] == "diffusion" and ckpt["svdd"]["domain"] == "dna"
    assert ckpt["svdd"]["model"]["seq_len"] == 24  # the pre-trained checkpoint's record is carried over
    assert all(k.startswith("diffusion.") for k in ckpt["state_dict"])  # not the frozen copy nor the reward
    record = json.loads((distilled / "distill.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [0, 1]
    # per round: 4 trajectories of 4 steps; 2 states each to the teacher (1 + 3 denoiser calls, 3 rewards)
    assert record["calls"] == {"denoiser_current": 2 * 16, "denoiser_pretrained": 2 * 8 * 4, "reward": 2 * (4 + 8 * 3)}


def test_distill_refuses_a_trainer_max_steps_its_rounds_would_replace(workdir, pretrained):
    out = workdir / "distill-max-steps"
    proc = run("train.py", "stage=distill", f"diffusion.checkpoint={pretrained}", "trainer.max_steps=7",
               f"output_dir={out}", "logger=none", *TINY, tmp=workdir, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "trainer.max_steps=7" in proc.stderr and "distill.rounds" in proc.stderr, proc.stderr[-2000:]
    assert not (out / "distilled.ckpt").exists()


SLOW = pytest.mark.slow  # the other decoders: run with make test-slow


@pytest.mark.parametrize("decoder", ["pretrained", "svdd_pm", "tree", *(pytest.param(d, marks=SLOW) for d in (
    "best_of_n", "svdd_mc", "smc", "svdd_r", "dps", "beam", "svdd_smc", "tree_search"))])
def test_a_distilled_checkpoint_decodes(decoder, workdir, distilled, value_ckpt):
    out = workdir / f"decode-distilled-{decoder}"
    args = [f"decoder={decoder}", f"diffusion.checkpoint={distilled / 'distilled.ckpt'}", "num_samples=4",
            "batch_size=4", f"output_dir={out}", "logger=none", *TINY]
    if decoder not in ("pretrained", "dps"):
        args.append("decoder.num_candidates=2")
    if decoder == "svdd_mc":
        args.append(f"value.checkpoint={value_ckpt}")
    run("decode.py", *args, tmp=workdir)
    assert json.loads((out / "summary.json").read_text())["num_samples"] == 4
