"""Bad input, faults and resumption, through the entry points as a user meets them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY, run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="module")
def pretrained(workdir) -> Path:
    out = workdir / "pre"
    run("train.py", "stage=pretrain", "trainer.max_steps=2", "pretrain.val_check_interval=2", "data.batch_size=16",
        f"output_dir={out}", *TINY, tmp=workdir)
    return out / "pretrained.ckpt"


def decode(workdir: Path, out: Path, *args: str, check: bool = False, **kw):
    ckpt = workdir / "pre" / "pretrained.ckpt"
    return run("decode.py", f"output_dir={out}", "logger=none", "num_samples=4", "decoder.num_candidates=2",
               f"diffusion.checkpoint={ckpt}", *TINY, *args, tmp=workdir, check=check, **kw)


def assert_clean_failure(proc, *needles: str, out: Path | None = None) -> None:
    assert proc.returncode != 0, proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    if out is not None:
        assert not (out / "summary.json").exists()


@pytest.mark.parametrize("option, needle", [
    ("decoder.num_candidates=0", "decoder.num_candidates=0 is not accepted: decoder.num_candidates takes a whole number >= 1"),
    ("decoder.alpha=-1", "decoder.alpha=-1 is not accepted: decoder.alpha takes a number >= 0"),
    ("num_samples=0", "num_samples=0 is not accepted"),
    ("decoder=svdd_r decoder.resample_fraction=2", "decoder.resample_fraction=2 is not accepted"),
])
def test_out_of_range_options_are_clear_errors(workdir, pretrained, option, needle):
    out = workdir / f"bad-{option.split('=')[0]}"
    proc = decode(workdir, out, *option.split())
    assert_clean_failure(proc, needle, out=out)


@pytest.mark.parametrize("group", ["domain", "reward", "decoder"])
def test_unknown_names_list_the_allowed_ones(workdir, pretrained, group):
    proc = decode(workdir, workdir / f"unknown-{group}", f"{group}=nonsense")
    assert_clean_failure(proc, f"Could not find '{group}/nonsense'", "Available options")


def test_unwritable_output_dir_is_a_clear_error(workdir, pretrained):
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            (workdir / "a-file").write_text("")
            target = workdir / "a-file" / "out"
        else:
            target = locked / "out"
        proc = decode(workdir, target)
        assert_clean_failure(proc, "cannot be written", str(target))
    finally:
        locked.chmod(0o700)


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_finished_runs_are_not_overwritten_without_asking(workdir, pretrained):
    out = workdir / "finished"
    decode(workdir, out, check=True)
    first = (out / "samples.csv").read_text()
    proc = decode(workdir, out, "seed=5")
    assert_clean_failure(proc, "already holds a finished run", "overwrite=true")
    assert (out / "samples.csv").read_text() == first and (out / "summary.json").exists()
    decode(workdir, out, "seed=5", "overwrite=true", check=True)
    assert (out / "samples.csv").read_text() != first


def test_a_nan_reward_names_the_reward_and_the_object(workdir, pretrained):
    out = workdir / "nan"
    proc = decode(workdir, out, "reward._target_=tests.user_reward.NaNOnSecond")
    assert_clean_failure(proc, "reward 'nan_on_second' returned nan for object 1", "reward_floor=VALUE", out=out)


def test_a_nan_reward_with_a_floor_is_counted(workdir, pretrained):
    out = workdir / "nan-floor"
    decode(workdir, out, "reward._target_=tests.user_reward.NaNOnSecond", "reward_floor=-1.0", check=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward_floor"]["value"] == -1.0 and summary["reward_floor"]["replaced"] > 0


def test_a_raising_reward_is_a_clear_error(workdir, pretrained):
    out = workdir / "raises"
    proc = decode(workdir, out, "reward._target_=tests.user_reward.Raises")
    assert_clean_failure(proc, "reward 'raises' raised RuntimeError: assay server unreachable", out=out)


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_a_killed_decode_resumes_to_the_same_samples(workdir, pretrained, monkeypatch):
    common = ["num_samples=256", "batch_size=16", "seed=7", "reward._target_=tests.user_reward.KilledMidRun"]
    whole = workdir / "uninterrupted"
    decode(workdir, whole, *common, check=True)
    out = workdir / "killed"
    monkeypatch.setenv("SVDD_TEST_KILL_AFTER", "40")  # about halfway: each batch of 16 calls the reward ~5 times
    proc = decode(workdir, out, *common)
    assert proc.returncode == -signal.SIGKILL
    shards = list((out / ".shards").glob("batch-*.pt"))
    assert 0 < len(shards) < 16 and not (out / "summary.json").exists()
    monkeypatch.delenv("SVDD_TEST_KILL_AFTER")
    resumed = decode(workdir, out, *common, check=True)
    assert f"resuming: {len(shards)} batch(es) already decoded" in resumed.stdout
    assert (out / "samples.csv").read_text() == (whole / "samples.csv").read_text()


def test_resuming_with_other_settings_is_refused(workdir, pretrained):
    out = workdir / "partial-other"
    (out / ".shards").mkdir(parents=True)
    (out / ".shards" / "run.json").write_text(json.dumps({"seed": 123}))
    (out / ".shards" / "batch-0000000000.pt").write_bytes(b"")
    proc = decode(workdir, out)
    assert_clean_failure(proc, "partial results of an interrupted run with different settings")


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_a_killed_value_training_resumes_from_its_last_checkpoint(workdir, pretrained):
    pre = pretrained.parent
    out = workdir / "value-killed"
    args = ["train.py", "stage=value", f"diffusion.checkpoint={pre / 'pretrained.ckpt'}", "value_training.num_rollouts=16",
            "value_training.rollout_batch_size=8", "value_training.batch_size=8", "value_training.val_check_interval=50",
            "trainer.max_steps=400", "checkpoint_every=10", f"output_dir={out}", "logger=none", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (out / "value.ckpt").exists(), "the run finished before it could be killed"
    import torch

    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < killed_at < 400
    resumed = run(*args, tmp=workdir)
    assert f"resuming from {last}" in resumed.stdout and "reusing the rollouts" in resumed.stdout
    assert torch.load(out / "value.ckpt", map_location="cpu", weights_only=False)["global_step"] == 400


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_rollouts_of_another_reward_are_not_reused(workdir, pretrained):
    """An output_dir's rollouts.pt scored with hepg2_motif is refused for a value of another reward."""
    out = workdir / "value-other-reward"
    common = ["train.py", "stage=value", f"diffusion.checkpoint={pretrained}", "value_training.num_rollouts=8",
              "value_training.rollout_batch_size=8", "value_training.batch_size=8", "trainer.max_steps=2",
              f"output_dir={out}", "logger=none", *TINY]
    run(*common, tmp=workdir)
    (out / "checkpoints" / "last.ckpt").unlink()
    proc = run(*common, "reward=gc", tmp=workdir, check=False)
    assert proc.returncode == 2 and "holds rollouts drawn with other settings (reward differ)" in proc.stderr
    assert "Traceback" not in proc.stderr


RESUME_LINE = "to resume, run the same command again: python "


def test_a_sigtermed_decode_stops_cleanly_and_resumes_to_the_same_samples(workdir, pretrained, monkeypatch):
    """SIGTERM partway (sent by the reward to its own process at a fixed call, so no timing is involved): the batch
    in flight is dropped whole, finished shards stay, exit 143 with one line saying how to resume; the same
    command then decodes the rest, and the samples equal an uninterrupted run's."""
    common = ["num_samples=64", "batch_size=8", "seed=5", "reward._target_=tests.user_reward.KilledMidRun"]
    whole = workdir / "sigterm-uninterrupted"
    decode(workdir, whole, *common, check=True)
    out = workdir / "sigtermed"
    monkeypatch.setenv("SVDD_TEST_KILL_AFTER", "12")  # each batch of 8 calls the reward ~5 times
    monkeypatch.setenv("SVDD_TEST_SIGNAL", "SIGTERM")
    proc = decode(workdir, out, *common)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr[-2000:]
    stops = [line for line in proc.stderr.splitlines() if RESUME_LINE in line]
    assert len(stops) == 1 and stops[0].startswith("stopped by SIGTERM") and "Traceback" not in proc.stderr
    shards = list((out / ".shards").glob("batch-*.pt"))
    assert 0 < len(shards) < 8 and not (out / "summary.json").exists() and not (out / "samples.csv").exists()
    monkeypatch.delenv("SVDD_TEST_KILL_AFTER")
    resumed = decode(workdir, out, *common, check=True)
    assert f"resuming: {len(shards)} batch(es) already decoded" in resumed.stdout
    assert (out / "samples.csv").read_text() == (whole / "samples.csv").read_text()


@pytest.mark.slow  # three value trainings of ~15 s; `make test-slow`
def test_a_sigtermed_value_training_resumes_to_the_same_weights(workdir, pretrained):
    """SIGTERM during regression: the finished step is saved to last.ckpt, exit 143; the same command resumes from
    it (the rollout loader's position included) and ends with the same weights, bitwise, as an uninterrupted run."""
    import torch

    pre = pretrained.parent
    args = ["train.py", "stage=value", f"diffusion.checkpoint={pre / 'pretrained.ckpt'}", "value_training.num_rollouts=16",
            "value_training.rollout_batch_size=8", "value_training.batch_size=8", "value_training.val_check_interval=50",
            "trainer.max_steps=300", "checkpoint_every=10", "logger=none", *TINY]
    whole, out = workdir / "value-uninterrupted", workdir / "value-sigtermed"
    run(*args, f"output_dir={whole}", tmp=workdir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, *args, f"output_dir={out}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    last = out / "checkpoints" / "last.ckpt"
    while not last.exists() and proc.poll() is None:  # the first periodic checkpoint: training is under way
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, "the run finished before it could be stopped: " + err[-1000:]
    assert sum(RESUME_LINE in line for line in err.splitlines()) == 1 and not (out / "value.ckpt").exists()
    stopped_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < stopped_at < 300
    resumed = run(*args, f"output_dir={out}", tmp=workdir)
    assert f"resuming from {last}" in resumed.stdout
    for name in ("checkpoints/last.ckpt", "value.ckpt"):
        a = torch.load(whole / name, map_location="cpu", weights_only=False)["state_dict"]
        b = torch.load(out / name, map_location="cpu", weights_only=False)["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_shards_of_another_version_are_refused_not_mixed():
    """A resumed run merges its shards only when every batch has the same keys (no back-compat filling)."""
    import torch

    from svdd_lightning.errors import ConfigError
    from svdd_lightning.predictions import merge_batches

    a = {"index": torch.tensor([2, 3]), "samples": torch.tensor([[1], [2]]), "calls": {"made": 1}}
    b = {"index": torch.tensor([0, 1]), "samples": torch.tensor([[3], [4]]), "calls": {"made": 2}}
    merged = merge_batches([a, b])
    assert merged["index"].tolist() == [0, 1, 2, 3] and merged["samples"].flatten().tolist() == [3, 4, 1, 2]
    assert merged["calls"] == [{"made": 1}, {"made": 2}]
    with pytest.raises(ConfigError, match="calls.*another version.*overwrite=true"):
        merge_batches([a, {k: v for k, v in b.items() if k != "calls"}])


def test_rollouts_without_settings_are_not_reused_silently(tmp_path):
    import torch

    from datamodules.rollout_files import check_rollout_settings
    from svdd_lightning.errors import ConfigError

    path = tmp_path / "rollouts.pt"
    torch.save({"x_t": torch.zeros(1), "settings": {"seed": 0}}, path)
    check_rollout_settings(path, {"seed": 0})
    with pytest.raises(ConfigError, match="seed"):
        check_rollout_settings(path, {"seed": 1})
    torch.save({"x_t": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="no record of the settings.*value_training.rollouts="):
        check_rollout_settings(path, {"seed": 0})
