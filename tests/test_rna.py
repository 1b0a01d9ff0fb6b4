"""RNA domain: the BLAST database reader behind the embedded 16S rRNA data, RNADataModule, the
ViennaRNA stability reward, the domain config, and one train.py + decode.py run."""

from __future__ import annotations

import csv
import json
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import RNA
import torch
from Bio import SeqIO
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from datamodules import blastdb
from datamodules.rna import DEFAULT_RNA_PATH, RNADataModule
from svdd_lightning.domains.sequences import encode
from svdd_lightning.rewards.rna import INVALID_STABILITY, MFEReward
from tests.contracts import RewardContract
from tests.helpers import image_domain, molecule_domain, on_domain, rna_domain  # noqa: F401
from tests.helpers import run

ROOT = Path(__file__).resolve().parent.parent
REAL_FASTA = ROOT / DEFAULT_RNA_PATH
PRIMER_515F = "GUGCCAGC[AC]GCCGCGGUAA"  # the 515F primer site, conserved in bacterial/archaeal 16S


# --------------------------------------------------------------------------------------- #
# A BLAST v4 nucleotide database written by hand (the layout blastdb.py documents)
# --------------------------------------------------------------------------------------- #

BASE_CODE = {"A": 0, "C": 1, "G": 2, "T": 3}
IUPAC_CODE = {ch: i for i, ch in enumerate(blastdb.NCBI4NA)}


def _pack(seq: str) -> bytes:
    """4 bases per byte, most significant first; ambiguity letters pack as A (their bases in a
    real database are arbitrary too); the last byte holds the remainder count in its low bits."""
    codes = [BASE_CODE.get(ch, 0) for ch in seq]
    out = bytearray()
    full = len(codes) // 4 * 4
    for i in range(0, full, 4):
        a, b, c, d = codes[i : i + 4]
        out.append(a << 6 | b << 4 | c << 2 | d)
    rest = codes[full:]
    last = len(rest)
    for k, code in enumerate(rest):
        last |= code << (6 - 2 * k)
    out.append(last)
    return bytes(out)


def _ambiguity_table(seq: str, new_format: bool) -> bytes:
    runs = [(m.start(), m.end() - m.start(), m.group()[0]) for m in re.finditer(r"([^ACGT])\1*", seq)]
    if not runs:
        return b""
    words = []
    for start, length, letter in runs:
        code = IUPAC_CODE[letter]
        if new_format:
            words += [code << 28 | (length - 1) << 16, start]
        else:
            assert length <= 16
            words.append(code << 28 | (length - 1) << 24 | start)
    count = len(words) | (0x80000000 if new_format else 0)
    return struct.pack(f">{len(words) + 1}I", count, *words)


def _header(title: str) -> bytes:
    """A minimal BER Blast-def-line-set: SEQUENCE { SEQUENCE { [0] VisibleString title } }."""
    text = title.encode()
    length = bytes([len(text)]) if len(text) < 128 else bytes([0x81, len(text)])
    return b"\x30\x80\x30\x80\xa0\x80\x1a" + length + text + b"\x00" * 6


def write_blastdb(prefix: Path, records: list[tuple[str, str]], *, new_format: bool = False,
                  version: int = 4, total_length: int | None = None) -> Path:
    nsq, nhr = bytearray(b"\x00"), bytearray()
    seq_off, amb_off, hdr_off = [], [], []
    for title, seq in records:
        hdr_off.append(len(nhr))
        nhr += _header(title)
        seq_off.append(len(nsq))
        nsq += _pack(seq)
        amb_off.append(len(nsq))
        nsq += _ambiguity_table(seq, new_format)
    seq_off.append(len(nsq))
    amb_off.append(len(nsq))
    hdr_off.append(len(nhr))
    n = len(records)
    total = sum(len(s) for _, s in records) if total_length is None else total_length

    def string(s: str) -> bytes:
        return struct.pack(">i", len(s)) + s.encode()

    nin = struct.pack(">ii", version, 0) + string("tiny test db") + string("Jan 1, 2000  0:00 AM\0\0\0")
    nin += struct.pack(">i", n) + struct.pack("<q", total) + struct.pack(">i", max(len(s) for _, s in records))
    for table in (hdr_off, seq_off, amb_off):
        nin += struct.pack(f">{n + 1}I", *table)
    Path(f"{prefix}.nin").write_bytes(nin)
    Path(f"{prefix}.nsq").write_bytes(bytes(nsq))
    Path(f"{prefix}.nhr").write_bytes(bytes(nhr))
    return prefix


TINY_RECORDS = [
    ("gi|1|gb|X1| a 16S fragment", "GTGCCAGCAGCCGCGGTAA"),  # 19 = 4 * 4 + 3
    ("one base", "G"),
    ("two", "TC"),
    ("exactly eight", "ACGTACGT"),  # remainder 0: a last byte holding no base
    ("with an N run and an R", "ACGNNNNNTTRGCA"),
    ("long " + "x" * 150, "".join(random.Random(0).choice("ACGT") for _ in range(301))),
]


@pytest.mark.parametrize("new_format", [False, True], ids=["old-ambiguities", "new-ambiguities"])
def test_blastdb_reader_round_trips_a_handmade_database(tmp_path, new_format):
    prefix = write_blastdb(tmp_path / "tiny", TINY_RECORDS, new_format=new_format)
    index, records = blastdb.read_blastdb(prefix)
    assert index.num_sequences == len(TINY_RECORDS) and index.title == "tiny test db"
    assert index.date == "Jan 1, 2000  0:00 AM"
    assert records == TINY_RECORDS  # titles, bases, remainders and IUPAC runs all come back


def test_blastdb_cli_writes_rna_fasta_that_the_datamodule_reads(tmp_path, capsys):
    prefix = write_blastdb(tmp_path / "tiny", TINY_RECORDS)
    out = tmp_path / "tiny.fa"
    assert blastdb.main([str(prefix), str(out), "--rna"]) == 0
    assert "6 sequences" in capsys.readouterr().out
    fasta = [(r.description, str(r.seq)) for r in SeqIO.parse(out, "fasta")]
    assert [s for _, s in fasta] == [s.replace("T", "U") for _, s in TINY_RECORDS]
    assert fasta[0][0] == "0 gi|1|gb|X1| a 16S fragment"
    dm = RNADataModule(path=str(out), seq_len=4, val_fraction=0.0)
    dm.setup()
    # windows of 4: 4 + 0 + 0 + 2 + 3 (ACGN, NNNN: with N; UURG: with R) + 75
    assert dm.stats["windows"] == 84 and dm.stats["dropped_n"] == 2 and dm.stats["dropped_other"] == 1
    assert dm.train_tokens.shape == (81, 4) and not out.with_name("tiny.fa.partial").exists()


def test_blastdb_reader_rejects_bad_databases(tmp_path):
    with pytest.raises(blastdb.BlastDBError, match="missing"):
        blastdb.read_blastdb(tmp_path / "absent")
    write_blastdb(tmp_path / "v5", TINY_RECORDS, version=5)
    with pytest.raises(blastdb.BlastDBError, match="version 5"):
        blastdb.read_blastdb(tmp_path / "v5")
    write_blastdb(tmp_path / "bad", TINY_RECORDS, total_length=12345)
    with pytest.raises(blastdb.BlastDBError, match="decoded .* bases but the index says 12345"):
        blastdb.read_blastdb(tmp_path / "bad")
    assert blastdb.main([str(tmp_path / "bad"), str(tmp_path / "bad.fa")]) == 1
    assert not (tmp_path / "bad.fa").exists()


needs_real_data = pytest.mark.skipif(
    not REAL_FASTA.is_file(), reason=f"{DEFAULT_RNA_PATH} is absent: run `make setup` (scripts/fetch_data.sh)"
)


@needs_real_data
def test_embedded_16s_rrna_looks_like_16s_rrna():
    seqs = [str(r.seq) for r in SeqIO.parse(REAL_FASTA, "fasta")]
    assert len(seqs) == 5681
    lengths = np.array([len(s) for s in seqs])
    assert 1400 <= np.median(lengths) <= 1550  # full-length 16S rRNA is ~1.5 kb
    joined = "".join(seqs)
    gc = sum(joined.count(b) for b in "GC") / sum(joined.count(b) for b in "ACGU")
    assert 0.5 < gc < 0.6 and "T" not in joined
    full = [s for s in seqs if len(s) >= 1300]
    hits = sum(bool(re.search(PRIMER_515F, s)) for s in full)
    assert hits / len(full) > 0.85  # a wrong decoder (bit order, offsets) would give ~0


@needs_real_data
def test_rna_datamodule_on_embedded_data():
    dm = RNADataModule()
    dm.setup()
    s = dm.stats
    assert s["sequences"] == 5681 and s["windows"] == 162372 and s["kept"] == 149947
    assert s["dropped_n"] + s["dropped_other"] == s["windows"] - s["kept"]
    assert dm.train_tokens.shape[1] == 50 and dm.val_tokens.shape[1] == 50
    assert dm.train_tokens.shape[0] + dm.val_tokens.shape[0] == 149947
    assert int(dm.train_tokens.min()) == 0 and int(dm.train_tokens.max()) == 3


# --------------------------------------------------------------------------------------- #
# RNADataModule on fixtures
# --------------------------------------------------------------------------------------- #


def test_rna_datamodule_reads_fasta_with_t_or_u(tmp_path):
    rng = random.Random(1)
    path = tmp_path / "rna.fa"
    with open(path, "w") as f:
        for i in range(10):
            seq = "".join(rng.choice("ACGU") for _ in range(120))
            f.write(f">r{i}\n{seq if i % 2 else seq.replace('U', 'T')}\n")
        f.write(">with_n\n" + "A" * 60 + "N" + "C" * 39 + "\n")
    dm = RNADataModule(path=str(path), val_fraction=0.2, batch_size=4)
    assert dm.seq_len == 50 and dm.alphabet == "ACGU"
    dm.setup()
    assert dm.stats["windows"] == 10 * 2 + 2 and dm.stats["dropped_n"] == 1 and dm.stats["kept"] == 21
    assert dm.train_tokens.shape[0] + dm.val_tokens.shape[0] == 21
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape == (4, 50) and batch["tokens"].dtype == torch.long


def test_rna_datamodule_reads_a_5utr_table_with_labels(tmp_path):
    rng = random.Random(2)
    path = tmp_path / "utr.csv"
    rows = [("".join(rng.choice("ACGT") for _ in range(50)), round(rng.uniform(2, 8), 3)) for _ in range(20)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utr", "rl"])
        w.writerows(rows)
    dm = RNADataModule(path=str(path), sequence_column="utr", label_columns=["rl"], val_fraction=0.1)
    dm.setup()
    assert dm.train_tokens.shape[1] == 50 and dm.train_labels.shape[1] == 1
    tokens = torch.cat([dm.train_tokens, dm.val_tokens])
    labels = torch.cat([dm.train_labels, dm.val_labels])[:, 0]
    got = {tuple(t.tolist()): float(v) for t, v in zip(tokens, labels)}
    # T is read as U: ACGT ids and ACGU ids coincide
    want = {tuple(t.tolist()): v for t, v in zip(encode([r[0] for r in rows], "ACGT"), [r[1] for r in rows])}
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 1e-5 for k in got)


# --------------------------------------------------------------------------------------- #
# MFE reward
# --------------------------------------------------------------------------------------- #


class TestMFEContract(RewardContract):
    @pytest.fixture
    def reward(self):
        return on_domain(MFEReward(), rna_domain())

    @pytest.fixture
    def reward_inputs(self):
        x = torch.randint(0, 4, (6, 50), generator=torch.Generator().manual_seed(0))
        x[0, 10] = 4  # a leftover mask token
        return x


def test_mfe_reward_is_minus_viennarna_mfe():
    reward = on_domain(MFEReward(), rna_domain())
    assert reward.name == "mfe" and reward.higher_is_better and not reward.is_differentiable
    hairpin, poly_a = "GGGGAAAACCCC", "A" * 12
    out = reward(encode([hairpin, poly_a], "ACGU"))
    assert out.dtype == torch.float32 and out.shape == (2,)
    assert out[0] == pytest.approx(-RNA.fold(hairpin)[1]) and out[0] > 0  # a stable stem: MFE -5.4
    assert out[1] == 0.0 and not torch.signbit(out[1])  # nothing pairs: no structure, +0.0
    seqs = ["".join(random.Random(i).choice("ACGU") for _ in range(50)) for i in range(20)]
    got = reward(encode(seqs, "ACGU"))
    want = torch.tensor([-RNA.fold(s)[1] for s in seqs])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert (got >= 0).all()


def test_mfe_reward_floors_masked_and_invalid_sequences():
    reward = on_domain(MFEReward(), rna_domain())
    x = encode(["GGGGAAAACCCC"] * 4, "ACGU")
    x[1, 5] = 4  # mask token
    x[2, 0] = -1
    x[3, 11] = 9
    out = reward(x)
    assert out[0] > 0 and (out[1:] == INVALID_STABILITY).all() and torch.isfinite(out).all()


def test_mfe_reward_reads_one_hots_by_argmax_and_checks_shapes():
    reward = on_domain(MFEReward(), rna_domain())
    x = encode(["GGGGAAAACCCC", "GCGCUUCGGCGC"], "ACGU")
    probs = torch.nn.functional.one_hot(x, 4).float() * 0.7 + 0.075
    torch.testing.assert_close(reward(probs), reward(x))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        reward(x[0])
    with pytest.raises(ValueError, match="temperature"):
        on_domain(MFEReward(temperature=-500.0), rna_domain())
    assert reward(x)[0] > on_domain(MFEReward(temperature=70.0), rna_domain())(x)[0]  # stems melt when it is warmer


# --------------------------------------------------------------------------------------- #
# Config and end to end
# --------------------------------------------------------------------------------------- #


def test_rna_domain_config_composes():
    from svdd_lightning.reward_choice import own_reward_node

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("decode", overrides=["domain=rna"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        gc_cfg = compose("decode", overrides=["domain=rna", "reward=gc"])
    assert cfg.domain.name == "rna" and list(cfg.domain.rewards) == ["mfe", "gc"]
    assert cfg.steps == 128 and cfg.diffusion.checkpoint == "checkpoints/rna/pretrained.ckpt"
    assert isinstance(instantiate(own_reward_node(cfg)), MFEReward)  # the reward's own keys, not its name mapping
    assert instantiate(own_reward_node(gc_cfg)).name == "gc"
    data = instantiate(cfg.data)
    assert isinstance(data, RNADataModule) and data.seq_len == 50 and data.default_path == DEFAULT_RNA_PATH
    domain = instantiate(cfg.objects)
    assert domain.native_name == "samples.fasta" and domain.alphabet == "ACGU" and domain.clean("acgt") == "ACGU"
    assert cfg.objects.naturalness_reference == "checkpoints/rna/heldout_3mer.json"


TINY = ["domain=rna", "domain.seq_len=24", "steps=4", "diffusion.network.channels=8",
        "diffusion.network.num_layers=2", "value_network.channels=8", "value_network.num_layers=2",
        "trainer.enable_progress_bar=false"]


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_train_then_decode_rna_end_to_end(tmp_path):
    rng = random.Random(0)
    fasta = tmp_path / "train.fa"
    with open(fasta, "w") as f:
        for i in range(30):
            f.write(f">r{i}\n{''.join(rng.choice('ACGU') for _ in range(100))}\n")
    pre = tmp_path / "pretrain"
    run("train.py", "stage=pretrain", f"data.path={fasta}", "data.batch_size=16", "data.val_fraction=0.1",
        "trainer.max_steps=3", "pretrain.val_check_interval=2", "logger=none", f"output_dir={pre}", *TINY,
        tmp=tmp_path)
    ckpt = torch.load(pre / "pretrained.ckpt", weights_only=False)
    meta = ckpt["svdd"]  # the checkpoint also knows its model (svdd_lightning/model_description.py)
    assert {k: meta[k] for k in ("kind", "domain")} == {"kind": "diffusion", "domain": "rna"}
    assert meta["model"]["_target_"] == "svdd_lightning.diffusion.masked.MaskedDiffusion"
    assert json.loads((pre / "heldout_3mer.json").read_text())["kmers"][:2] == ["AAA", "AAC"]

    out = tmp_path / "decode"
    proc = run("decode.py", "decoder=svdd_pm", f"diffusion.checkpoint={pre / 'pretrained.ckpt'}",
               f"objects.naturalness_reference={pre / 'heldout_3mer.json'}", "num_samples=6", "batch_size=4", "seed=0",
               "decoder.num_candidates=3", "logger=none", f"output_dir={out}", *TINY, tmp=tmp_path)
    assert "rna / reward mfe" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["domain"] == "rna" and summary["reward"] == "mfe" and summary["decoder"] == "svdd_pm"
    assert "kmer3_correlation" in summary["naturalness"]
    rows = list(csv.DictReader(open(out / "samples.csv")))
    records = list(SeqIO.parse(out / "samples.fasta", "fasta"))
    assert [str(r.seq) for r in records] == [r["sample"] for r in rows] and len(rows) == 6
    assert all(len(r.seq) == 24 and set(str(r.seq)) <= set("ACGU") for r in records)
    reward = on_domain(MFEReward(), rna_domain())
    want = reward(encode([r["sample"] for r in rows], "ACGU"))
    torch.testing.assert_close(torch.tensor([float(r["reward"]) for r in rows]), want, atol=1e-4, rtol=0)
    assert (out / "reward_hist.png").is_file()
