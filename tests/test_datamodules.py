import gzip
import logging
import random
from pathlib import Path

import pytest
import torch

from datamodules import sequences as seqmod
from datamodules.dna import DEFAULT_DNA_PATH, DNADataModule
from datamodules.sequences import SequenceDataModule, read_sequences, windows
from svdd_lightning.domains.nucleotides import NucleotideDomain
from svdd_lightning.domains.sequences import decode
from svdd_lightning.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parent.parent

# seq_len=4: rec1 -> ACGT | NACG | TAAA (+ tail A): 2 kept, 1 N
#            rec2 -> ACGT | RRRR | CCGG: 2 kept, 1 other (lower case is accepted)
#            rec3 -> too short
#            rec4 (multi-line) -> AAAA | CCCC | NNNN: 2 kept, 1 N
SMALL_FASTA = ">rec1 first\nACGTNACGTAAAA\n>rec2\nacgtRRRRccgg\n>rec3\nAC\n>rec4\nAAAA\nCCCC\nNNNN\n"
SMALL_STATS = {
    "sequences": 4,
    "windows": 9,
    "kept": 6,
    "dropped_n": 2,
    "dropped_other": 1,
    "too_short": 1,
}


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def random_fasta(path: Path, n: int = 50, length: int = 40, seed: int = 1) -> Path:
    rng = random.Random(seed)
    recs = [f">s{i}\n{''.join(rng.choice('ACGT') for _ in range(length))}\n" for i in range(n)]
    return write(path, "".join(recs))


def gosai_csv(path: Path, rows: list[tuple[str, float, float, float]]) -> Path:
    lines = ["sequence,HepG2,K562,SK-N-SH"] + [f"{s},{a},{b},{c}" for s, a, b, c in rows]
    return write(path, "\n".join(lines) + "\n")


GOSAI_ROWS = [
    ("ACGTACGTAC", 0.1, 0.2, 0.3),
    ("CCCCGGGGAA", 1.0, 2.0, 3.0),
    ("ACGTNCGTAC", 9.0, 9.0, 9.0),  # N: dropped
    ("TTTTAAAACC", -1.0, -2.0, -3.0),
    ("GGGGCCCCTT", 0.5, 0.5, 0.5),
]


# --------------------------------------------------------------------------- reading ---


def test_read_fasta_uppercases(tmp_path):
    seqs, labels = read_sequences(write(tmp_path / "x.fa", SMALL_FASTA))
    assert labels is None
    assert seqs == ["ACGTNACGTAAAA", "ACGTRRRRCCGG", "AC", "AAAACCCCNNNN"]


@pytest.mark.parametrize("name", ["x.fa.gz", "x.fasta", "x.fna.gz"])
def test_read_fasta_variants(tmp_path, name):
    seqs, _ = read_sequences(write(tmp_path / name, SMALL_FASTA))
    assert len(seqs) == 4


def test_read_csv_labels(tmp_path):
    path = gosai_csv(tmp_path / "gosai.csv.gz", GOSAI_ROWS)
    seqs, labels = read_sequences(path, label_columns=["HepG2", "K562", "SK-N-SH"])
    assert seqs[1] == "CCCCGGGGAA"
    assert list(labels.columns) == ["HepG2", "K562", "SK-N-SH"]
    assert labels.shape == (5, 3)
    assert labels.iloc[3].tolist() == [-1.0, -2.0, -3.0]


def test_read_tsv_utr(tmp_path):
    path = write(tmp_path / "utr.tsv", "utr\trl\nacgu\t1.5\nggcc\t2.5\n")
    seqs, labels = read_sequences(path, sequence_column="utr", label_columns=["rl"])
    assert seqs == ["ACGU", "GGCC"]
    assert labels["rl"].tolist() == [1.5, 2.5]


# ------------------------------------------------------------------------- windowing ---


def test_windows_counts():
    seqs = ["ACGTNACGTAAAA", "acgtRRRRccgg", "AC", "AAAACCCCNNNN"]
    kept, stats = windows(seqs, seq_len=4, domain=NucleotideDomain(alphabet="ACGT"))
    assert kept == ["ACGT", "TAAA", "ACGT", "CCGG", "AAAA", "CCCC"]
    assert stats == SMALL_STATS


def test_windows_stride_and_rna():
    kept, stats = windows(["ACGTAC"], seq_len=4, stride=1, domain=NucleotideDomain(alphabet="ACGT"))
    assert kept == ["ACGT", "CGTA", "GTAC"] and stats["windows"] == 3
    kept, stats = windows(["ACGTAC", "ACGUAC"], seq_len=6, domain=NucleotideDomain(alphabet="ACGU"))
    assert kept == ["ACGUAC", "ACGUAC"]  # T is read as U for RNA


# ------------------------------------------------------------------------ datamodule ---


@pytest.mark.parametrize("name", ["small.fa", "small.fa.gz"])
def test_datamodule_fasta_counts(tmp_path, name, caplog):
    path = write(tmp_path / name, SMALL_FASTA)
    dm = SequenceDataModule(alphabet="ACGT", path=str(path), seq_len=4, val_fraction=0.0)
    with caplog.at_level(logging.INFO, logger="svdd_lightning.data"):
        dm.setup()
    assert {k: dm.stats[k] for k in SMALL_STATS} == SMALL_STATS
    assert dm.train_tokens.shape == (6, 4) and dm.val_tokens.shape == (0, 4)
    assert sorted(decode(dm.train_tokens, "ACGT")) == sorted(
        ["ACGT", "TAAA", "ACGT", "CCGG", "AAAA", "CCCC"]
    )
    msg = " ".join(r.getMessage() for r in caplog.records if r.name == "svdd_lightning.data")
    assert "kept 6" in msg and "dropped 2 with N" in msg and name in msg


def test_split_deterministic_and_grouped(tmp_path):
    path = random_fasta(tmp_path / "r.fa")  # 50 records x 5 windows of 8

    def make(seed, **kw):
        dm = DNADataModule(path=str(path), seq_len=8, val_fraction=0.2, seed=seed, **kw)
        dm.setup()
        return dm

    a, b, c = make(0), make(0), make(1)
    assert torch.equal(a.train_tokens, b.train_tokens) and torch.equal(a.val_tokens, b.val_tokens)
    assert not torch.equal(a.val_tokens, c.val_tokens)
    assert a.train_tokens.shape[0] + a.val_tokens.shape[0] == 250
    assert a.val_tokens.shape[0] == 50  # 10 whole records of 5 windows
    assert a.stats["split_by"] == "sequence"
    # whole source records on one side: no window shared between train and val
    train, val = set(decode(a.train_tokens, "ACGT")), set(decode(a.val_tokens, "ACGT"))
    assert not train & val
    # subsampling is seeded too
    s1, s2 = make(3, max_windows=60), make(3, max_windows=60)
    assert s1.stats["used"] == 60 and s1.stats["kept"] == 250
    assert torch.equal(s1.train_tokens, s2.train_tokens)


def test_single_record_falls_back_to_window_split(tmp_path):
    path = random_fasta(tmp_path / "chrom.fa", n=1, length=400)
    dm = DNADataModule(path=str(path), seq_len=8, val_fraction=0.1)
    dm.setup()
    assert dm.stats["split_by"] == "window"
    assert dm.train_tokens.shape[0] == 45 and dm.val_tokens.shape[0] == 5


def test_batches_and_idempotent_setup(tmp_path, monkeypatch):
    path = random_fasta(tmp_path / "r.fa")
    dm = DNADataModule(path=str(path), seq_len=8, batch_size=16, val_fraction=0.1)
    dm.setup("fit")
    calls = []
    monkeypatch.setattr(seqmod, "read_sequences", lambda *a, **k: calls.append(1))
    first = dm.train_tokens
    dm.setup("validate")
    assert not calls and dm.train_tokens is first
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"tokens"}
    assert batch["tokens"].shape == (16, 8) and batch["tokens"].dtype == torch.long
    assert int(batch["tokens"].min()) >= 0 and int(batch["tokens"].max()) <= 3
    val = torch.cat([b["tokens"] for b in dm.val_dataloader()])
    assert torch.equal(val, dm.val_tokens)


def test_labelled_csv(tmp_path):
    path = gosai_csv(tmp_path / "gosai.csv", GOSAI_ROWS)
    dm = DNADataModule(
        path=str(path),
        seq_len=10,
        batch_size=8,
        val_fraction=0.25,
        label_columns=["HepG2", "K562", "SK-N-SH"],
    )
    dm.setup()
    assert dm.stats["windows"] == 5 and dm.stats["kept"] == 4 and dm.stats["dropped_n"] == 1
    assert dm.train_tokens.shape[0] == 3 and dm.val_tokens.shape[0] == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape == (3, 10) and batch["tokens"].dtype == torch.long
    assert batch["labels"].shape == (3, 3) and batch["labels"].dtype == torch.float32
    # labels stay aligned with their sequences
    table = {s: [a, b, c] for s, a, b, c in GOSAI_ROWS}
    for seq, lab in zip(decode(dm.train_tokens, "ACGT"), dm.train_labels.tolist()):
        assert lab == pytest.approx(table[seq])


def test_unlabelled_csv_is_windowed(tmp_path):
    path = write(tmp_path / "plain.csv", "name,sequence\na,ACGTACGTAC\nb,NNNNCCCCGG\n")
    dm = DNADataModule(path=str(path), seq_len=5, val_fraction=0.0)
    dm.setup()
    assert dm.stats["windows"] == 4 and dm.stats["kept"] == 3 and dm.stats["dropped_n"] == 1


# -------------------------------------------------------------------------- failures ---


def _bad_setup(path: Path, **kw):
    kw.setdefault("seq_len", 4)
    dm = SequenceDataModule(alphabet="ACGT", path=str(path), **kw)
    with pytest.raises(DataError) as err:
        dm.setup()
    assert path.name in str(err.value)
    return str(err.value)


def test_missing_file(tmp_path):
    msg = _bad_setup(tmp_path / "nope.fa")
    assert "data.path" in msg


def test_missing_default_says_make_setup(tmp_path):
    dm = DNADataModule(default_path=str(tmp_path / "gone.fa.gz"))
    with pytest.raises(DataError, match="make setup") as err:
        dm.setup()
    assert "gone.fa.gz" in str(err.value)


def test_empty_files(tmp_path):
    _bad_setup(write(tmp_path / "empty.fa", ""))
    _bad_setup(write(tmp_path / "blank.fa", "\n\n"))
    _bad_setup(write(tmp_path / "empty.fa.gz", ""))
    _bad_setup(write(tmp_path / "empty.csv", ""))
    _bad_setup(write(tmp_path / "header.csv", "sequence,HepG2\n"))


def test_junk_fasta(tmp_path):
    msg = _bad_setup(write(tmp_path / "junk.fa", "this is not fasta\nACGT\n"))
    assert "'>'" in msg
    binary = tmp_path / "binary.fasta"
    binary.write_bytes(bytes(range(256)) * 4)
    _bad_setup(binary)


def test_truncated_gzip(tmp_path):
    good = write(tmp_path / "good.fa.gz", SMALL_FASTA * 200).read_bytes()
    bad = tmp_path / "truncated.fa.gz"
    bad.write_bytes(good[: len(good) // 2])
    _bad_setup(bad)


def test_unknown_extension(tmp_path):
    msg = _bad_setup(write(tmp_path / "seqs.txt", SMALL_FASTA))
    assert ".fasta" in msg and ".csv" in msg


def test_csv_without_sequence_column(tmp_path):
    path = write(tmp_path / "cols.csv", "seq,HepG2\nACGT,1\n")
    msg = _bad_setup(path)
    assert "data.sequence_column=NAME" in msg and "'seq'" in msg and "HepG2" in msg


def test_csv_missing_label_columns(tmp_path):
    path = gosai_csv(tmp_path / "gosai.csv", GOSAI_ROWS)
    msg = _bad_setup(path, seq_len=10, label_columns=["HepG2", "Liver"])
    assert "Liver" in msg


def test_csv_wrong_length_names_row(tmp_path):
    rows = GOSAI_ROWS[:2] + [("ACGTAC", 1.0, 1.0, 1.0)]
    msg = _bad_setup(gosai_csv(tmp_path / "short.csv", rows), seq_len=10, label_columns=["K562"])
    assert "row 3" in msg and "length 6" in msg and "data.seq_len" in msg


def test_csv_non_numeric_label(tmp_path):
    path = write(tmp_path / "text.csv", "sequence,HepG2\nACGT,1.0\nCCGG,high\n")
    msg = _bad_setup(path, label_columns=["HepG2"])
    assert "'high'" in msg and "row 2" in msg


def test_fasta_with_labels(tmp_path):
    _bad_setup(write(tmp_path / "x.fa", SMALL_FASTA), label_columns=["HepG2"])


def test_nothing_usable(tmp_path):
    msg = _bad_setup(write(tmp_path / "allN.fa", ">a\nNNNNNNNN\n>b\nAC\n"))
    assert "data.seq_len" in msg


def test_bad_options():
    with pytest.raises(ConfigError):
        DNADataModule(val_fraction=1.0)
    with pytest.raises(ConfigError):
        DNADataModule(seq_len=0)
    with pytest.raises(ConfigError):
        SequenceDataModule(alphabet="ACGT", path=None, seq_len=10)


# ---------------------------------------------------------------------- real default ---


@pytest.mark.skipif(
    not (REPO_ROOT / DEFAULT_DNA_PATH).is_file(),
    reason=f"{DEFAULT_DNA_PATH} is absent; run `make setup` to fetch the embedded DNA data",
)
def test_real_default_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative default resolves against the repo root
    dm = DNADataModule(max_windows=1000)
    dm.setup()
    assert dm.data_path == REPO_ROOT / DEFAULT_DNA_PATH
    assert dm.train_tokens.shape[1] == 200 and dm.val_tokens.shape[1] == 200
    assert dm.train_tokens.shape[0] + dm.val_tokens.shape[0] == 1000
    assert dm.val_tokens.shape[0] > 0
    both = torch.cat([dm.train_tokens, dm.val_tokens])
    assert both.dtype == torch.long and int(both.min()) == 0 and int(both.max()) == 3
    assert dm.stats["sequences"] > 26_000
    assert dm.stats["windows"] > 200_000
    assert dm.stats["dropped_n"] > 0
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape == (128, 200)
