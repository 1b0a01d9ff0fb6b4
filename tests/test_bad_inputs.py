"""Each class of bad input of the reliability issue, tried through train.py or decode.py as a user
would: a non-zero exit, a message naming the input, no traceback, no summary.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY, run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-inputs")


def fails_cleanly(proc, *needles: str, out: Path | None = None) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if out is not None:
        assert not (out / "summary.json").exists()


def pretrain(workdir: Path, *args: str):
    return run("train.py", "stage=pretrain", "trainer.max_steps=1", f"output_dir={workdir / 'pre-bad'}", *TINY, *args,
               tmp=workdir, check=False)


RANDOM_DNA = "ACGTTGCAAGCTTCGAACGTTGCAAGCTTCGAACGT" * 2

DATA_CASES = {
    "letters outside the alphabet": ("bad_letters.fa", f">a\n{RANDOM_DNA[:30]}XJ{RANDOM_DNA[:30]}\n"),
    "empty file": ("empty.fa", ""),
    "sequences of the wrong length": ("short.csv", "sequence\nACGT\nACGTA\n"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_sequence_files(workdir, case):
    name, text = DATA_CASES[case]
    path = workdir / name
    path.write_text(text)
    fails_cleanly(pretrain(workdir, f"data.path={path}"), name)


def test_missing_data_file(workdir):
    fails_cleanly(pretrain(workdir, "data.path=/nonexistent/reads.fa"), "/nonexistent/reads.fa")


def test_unparseable_smiles_in_training_data(workdir):
    path = workdir / "broken.smi"
    path.write_text("CCO\nnot_a_smiles(((\nc1ccccc1\n")
    proc = run("train.py", "stage=pretrain", "domain=molecule", f"data.path={path}", "trainer.max_steps=1",
               f"output_dir={workdir / 'mol-bad'}", *TINY, tmp=workdir, check=False)
    fails_cleanly(proc, "broken.smi", "line 2", "data.skip_invalid=true")


def test_too_many_unparseable_smiles_even_when_skipping(workdir):
    path = workdir / "mostly_broken.smi"
    path.write_text("CCO\n" + "".join(f"xx{i}(((\n" for i in range(5)))
    proc = run("train.py", "stage=pretrain", "domain=molecule", f"data.path={path}", "data.skip_invalid=true",
               "trainer.max_steps=1", f"output_dir={workdir / 'mol-bad2'}", *TINY, tmp=workdir, check=False)
    fails_cleanly(proc, "mostly_broken.smi", "5 of 6 SMILES", "data.max_invalid_fraction")


def test_labelled_table_without_the_named_column(workdir):
    path = workdir / "labels.csv"
    path.write_text("sequence,activity\n" + "".join(f"{RANDOM_DNA[:40]},{i}\n" for i in range(8)))
    proc = run("train.py", "stage=oracle", f"data.path={path}", "data.label_columns=[HepG2]", "trainer.max_steps=1",
               f"output_dir={workdir / 'oracle-bad'}", *TINY, tmp=workdir, check=False)
    fails_cleanly(proc, "labels.csv", "HepG2")


def decode(workdir: Path, out: Path, *args: str):
    return run("decode.py", f"output_dir={out}", "logger=none", "num_samples=2", *args, tmp=workdir, check=False)


def test_corrupt_checkpoint(workdir):
    bad = workdir / "corrupt.ckpt"
    bad.write_bytes(b"\x80\x04 this is not a checkpoint")
    out = workdir / "dec-corrupt"
    fails_cleanly(decode(workdir, out, f"diffusion.checkpoint={bad}"), "corrupt.ckpt", out=out)


def test_checkpoint_of_another_domain(workdir):
    out = workdir / "dec-domain"
    fails_cleanly(decode(workdir, out, "diffusion.checkpoint=checkpoints/rna/pretrained.ckpt"),
                  "checkpoints/rna/pretrained.ckpt", "rna", out=out)


def test_checkpoint_of_another_model(workdir):
    out = workdir / "dec-model"
    fails_cleanly(decode(workdir, out, "diffusion.checkpoint=checkpoints/dna/value_hepg2_motif.ckpt"),
                  "value_hepg2_motif.ckpt", out=out)


def test_checkpoint_of_another_vocabulary(workdir):
    """A molecule model trained with another SELFIES vocabulary (same size, other tokens)."""
    import json

    vocab = json.loads(Path("svdd_lightning/resources/selfies_vocab.json").read_text())
    tokens = vocab["tokens"] if isinstance(vocab, dict) else vocab
    swapped = list(reversed(tokens[:-1])) + tokens[-1:]
    other = workdir / "other_vocab.json"
    other.write_text(json.dumps({**vocab, "tokens": swapped} if isinstance(vocab, dict) else swapped))
    out = workdir / "dec-vocab"
    proc = decode(workdir, out, "domain=molecule", f"domain.vocab={other}")
    fails_cleanly(proc, "vocabulary", "other_vocab.json", out=out)


def test_value_of_the_same_reward_under_other_settings(workdir):
    """The shipped digit value estimates log p(class 0); asking for class 3 with it is refused."""
    out = workdir / "dec-value-settings"
    proc = decode(workdir, out, "domain=image", "reward=digit", "reward.target_class=3", "decoder=svdd_mc")
    fails_cleanly(proc, "value_digit.ckpt", "target_class: 0 there, 3 here", out=out)
