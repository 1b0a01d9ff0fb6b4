"""Files are loaded without running code from them; oracle checkpoints build only our networks."""

import collections

import pytest
import torch

from callbacks.shard_writer import read_shards
from datamodules.rollouts import load_rollouts
from svdd_lightning.checkpoints import read_checkpoint
from svdd_lightning.errors import CheckpointError, DataError
from svdd_lightning.rewards.oracle import build_oracle_network


class Payload:
    """An arbitrary object: unpickling it would mean importing and running code the file chose."""


def test_a_checkpoint_holding_objects_is_refused_by_name(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "extra": Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(path)


def test_rollouts_and_shards_holding_objects_are_refused(tmp_path):
    rollouts = tmp_path / "rollouts.pt"
    torch.save({"states": torch.zeros(1), "steps": torch.zeros(1), "rewards": torch.zeros(1), "x": Payload()},
               rollouts)
    with pytest.raises(DataError, match="refusing to load"):
        load_rollouts(rollouts)
    shard = tmp_path / "batch-0.pt"
    torch.save([{"index": torch.arange(2), "x": Payload()}], shard)
    with pytest.raises(Exception, match="Unsupported global|weights_only"):
        read_shards([shard])


def test_plain_checkpoints_still_load(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": collections.OrderedDict(w=torch.ones(2)), "svdd": {"kind": "value"}}, path)
    assert read_checkpoint(path)["svdd"] == {"kind": "value"}


def test_an_oracle_naming_a_foreign_class_is_refused(tmp_path):
    ckpt = torch.load("checkpoints/image/oracle_digit.ckpt", map_location="cpu", weights_only=True)
    ckpt["svdd"]["network"]["_target_"] = "os.system"
    path = tmp_path / "oracle.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="not one of this project's networks"):
        build_oracle_network(str(path))


class RunsCode:
    """Unpickling this object would run a shell command (the classic malicious-checkpoint payload)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_by_decode_py_with_an_error_line(tmp_path):
    from tests.helpers import run

    marker = tmp_path / "code-ran"
    shipped = torch.load("checkpoints/dna/pretrained.ckpt", map_location="cpu", weights_only=True)
    shipped["svdd"]["note"] = RunsCode(marker)
    crafted = tmp_path / "downloaded.ckpt"
    torch.save(shipped, crafted)
    proc = run("decode.py", f"diffusion.checkpoint={crafted}", "num_samples=2", "logger=none",
               f"output_dir={tmp_path / 'out'}", tmp=tmp_path, check=False)
    assert proc.returncode == 2
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: checkpoint") and str(crafted) in line and "refusing" in line
    assert not marker.exists()  # nothing in the file ran
    assert not (tmp_path / "out" / "samples.csv").exists()
