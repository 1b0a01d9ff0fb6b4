"""The molecule domain: SELFIES tokens, RDKit rewards, naturalness metrics, the DataModule, and
an end-to-end train.py / decode.py run on a tiny SMILES file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import selfies as sf
import torch
from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen

from datamodules.molecule import MoleculeDataModule, moses_path
from svdd_lightning.domains.molecules.chem import (
    PAD_TOKEN,
    VOCAB_PATH,
    SelfiesVocabulary,
    build_vocabulary,
    canonical_smiles,
    smiles_hashes,
    to_mol,
)
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.errors import DataError
from svdd_lightning.domains.molecules import MoleculeDomain
from svdd_lightning.domains.molecules.naturalness import internal_diversity, molecule_metrics
from svdd_lightning.networks.sequence import SequenceDenoiser
from svdd_lightning.rewards.molecule import LOGP_FLOOR, LogPReward, QEDReward, SAReward, _sascorer
from tests.contracts import RewardContract
from tests.helpers import image_domain, molecule_domain, on_domain, rna_domain  # noqa: F401
from tests.helpers import run

L = 48
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "Cn1c(=O)c2c(ncn2C)n(C)c1=O",  # caffeine
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",  # ibuprofen
    "c1ccccc1",
    "CCN(CC)CC",
    "O=C(Nc1ccc(Cl)cc1)c1ccccc1F",
]


@pytest.fixture(scope="module")
def vocab() -> SelfiesVocabulary:
    return SelfiesVocabulary.load()


def encode(vocab: SelfiesVocabulary, smiles: list[str], seq_len: int = L) -> torch.Tensor:
    return torch.tensor([vocab.encode_smiles(s, seq_len) for s in smiles])


@pytest.fixture(scope="module")
def rewards() -> dict:
    return {"qed": on_domain(QEDReward(), molecule_domain()), "sa": on_domain(SAReward(), molecule_domain()), "logp": on_domain(LogPReward(), molecule_domain())}


# --------------------------------------------------------------------------------------- #
# Vocabulary and tokens
# --------------------------------------------------------------------------------------- #


def test_shipped_vocabulary_matches_the_domain_config(vocab):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).resolve().parent.parent / "configs/domain/molecule.yaml")
    assert cfg.domain.vocab_size == len(vocab) and vocab.tokens[vocab.pad_id] == PAD_TOKEN
    assert vocab.mask_id == len(vocab)
    data = json.loads(VOCAB_PATH.read_text())
    assert data["seq_len"] == cfg.domain.seq_len == L
    assert data["stats"]["fraction_longer_than_seq_len"] < 0.001


def test_nci_smiles_round_trip_through_selfies_tokens(tmp_path):
    lines = Path(RDConfig.RDDataDir, "NCI", "first_5K.smi").read_text().splitlines()[:400]
    smiles = [line.split()[0] for line in lines if line.strip()]
    built = build_vocabulary(smiles, seq_len=200)
    path = tmp_path / "nci_vocab.json"
    path.write_text(json.dumps(built))
    vocab = SelfiesVocabulary.load(path)
    rows, expected = [], []
    for s in smiles:
        try:
            rows.append(vocab.encode_smiles(s, 200))
        except sf.EncoderError:  # a couple of hypervalent iodine compounds SELFIES refuses
            continue
        expected.append(canonical_smiles(s))
    assert len(rows) >= 0.99 * len(smiles)
    decoded = vocab.decode(torch.tensor(rows))
    assert [canonical_smiles(d) for d in decoded] == expected


def test_random_token_rows_always_decode_to_valid_molecules(vocab):
    x = torch.randint(0, len(vocab), (500, L), generator=torch.Generator().manual_seed(0))
    mols = [to_mol(s) for s in vocab.decode(x)]
    assert all(m is not None and m.GetNumAtoms() > 0 for m in mols)


def test_mask_or_empty_rows_decode_to_none(vocab):
    row = vocab.encode_smiles("CCO", L)
    masked = torch.tensor([row])
    masked[0, 1] = vocab.mask_id
    padding = torch.full((1, L), vocab.pad_id)
    assert vocab.decode(torch.cat([masked, padding])) == [None, None]
    assert vocab.decode(torch.tensor([row])) == ["CCO"]


# --------------------------------------------------------------------------------------- #
# Rewards
# --------------------------------------------------------------------------------------- #


class _MoleculeRewardContract(RewardContract):
    @pytest.fixture
    def reward_inputs(self, vocab):
        x = torch.randint(0, len(vocab), (6, L), generator=torch.Generator().manual_seed(0))
        x[0] = vocab.mask_id  # all mask: invalid, must score the floor
        return x


class TestQEDContract(_MoleculeRewardContract):
    @pytest.fixture
    def reward(self, rewards):
        return rewards["qed"]


class TestSAContract(_MoleculeRewardContract):
    @pytest.fixture
    def reward(self, rewards):
        return rewards["sa"]


class TestLogPContract(_MoleculeRewardContract):
    @pytest.fixture
    def reward(self, rewards):
        return rewards["logp"]


def test_rewards_match_rdkit(vocab, rewards):
    x = encode(vocab, DRUGS)
    mols = [Chem.MolFromSmiles(s) for s in DRUGS]
    sascorer = _sascorer()
    expected = {
        "qed": [QED.qed(m) for m in mols],
        "sa": [(10 - sascorer.calculateScore(m)) / 9 for m in mols],
        "logp": [Crippen.MolLogP(m) for m in mols],
    }
    for name, reward in rewards.items():
        out = reward(x)
        assert out.dtype == torch.float32 and out.shape == (len(DRUGS),)
        np.testing.assert_allclose(out.numpy(), expected[name], rtol=1e-6, atol=1e-6, err_msg=name)
    assert 0.0 < rewards["qed"](x).min() and rewards["qed"](x).max() < 1.0


def test_invalid_molecules_score_the_documented_floor(vocab, rewards):
    x = encode(vocab, ["CCO", "CCO"])
    x[0, 0] = vocab.mask_id  # a leftover mask token is invalid
    x[1] = vocab.pad_id  # an empty molecule is invalid
    assert rewards["qed"](x).tolist() == [0.0, 0.0]
    assert rewards["sa"](x).tolist() == [0.0, 0.0]
    assert rewards["logp"](x).tolist() == [LOGP_FLOOR, LOGP_FLOOR]


def test_sa_matches_the_zinc_reference_scores(tmp_path):
    """RDKit ships 100 ZINC molecules with reference SA scores rounded to 3 decimals, so the
    reward must agree to half a unit in the last place (5e-4 in SA units, /9 normalised). The
    molecules hold charged atoms outside the MOSES vocabulary, so a vocabulary is built from
    them and the scores go through the full tokens -> SELFIES -> SMILES -> RDKit path."""
    table = pd.read_csv(Path(RDConfig.RDContribDir, "SA_Score", "data", "zim.100.txt"), sep="\t")
    built = build_vocabulary(table["smiles"], seq_len=80)
    path = tmp_path / "zim_vocab.json"
    path.write_text(json.dumps(built))
    vocab = SelfiesVocabulary.load(path)
    x = encode(vocab, table["smiles"].tolist(), 80)
    ours = on_domain(SAReward(), molecule_domain(path))(x).double().numpy()
    reference = (10.0 - table["sa_score"].to_numpy()) / 9.0
    np.testing.assert_allclose(ours, reference, rtol=0, atol=5.01e-4 / 9 + 1e-7)


# --------------------------------------------------------------------------------------- #
# Naturalness and format
# --------------------------------------------------------------------------------------- #


def test_naturalness_on_hand_made_cases():
    train = smiles_hashes([canonical_smiles("CCO")])
    out = molecule_metrics(["OCC", "CCO", "c1ccccc1", None], train)  # OCC is ethanol again
    assert out["validity"] == pytest.approx(3 / 4)
    assert out["uniqueness"] == pytest.approx(2 / 3)
    assert out["novelty"] == pytest.approx(1 / 2)  # ethanol is a training molecule
    assert 0.0 < out["internal_diversity"] <= 1.0
    same = molecule_metrics(["CC(=O)Oc1ccccc1C(=O)O"] * 4)
    assert same["uniqueness"] == 0.25 and same["internal_diversity"] == pytest.approx(0.0)
    assert "novelty" not in same
    assert internal_diversity([Chem.MolFromSmiles("CCO")]) == 0.0


def test_molecule_naturalness_call_and_reference(tmp_path, vocab):
    class _Data:
        train_smiles = [canonical_smiles(s) for s in DRUGS[:3]]

    natural = MoleculeDomain(naturalness_reference=None)
    [ref] = natural.write_reference(_Data(), tmp_path)
    assert ref.name == "train_smiles_hashes.npy" and np.load(ref).shape == (3,) and ref.stat().st_size < 200
    torch.manual_seed(0)
    net = SequenceDenoiser(vocab_size=len(vocab), channels=8, num_layers=1, time_dim=8)
    diffusion = MaskedDiffusion(network=net, vocab_size=len(vocab), seq_len=L, num_steps=4).eval()
    samples = encode(vocab, [DRUGS[0], DRUGS[0], DRUGS[4]])
    out = MoleculeDomain(naturalness_reference=str(ref)).naturalness(samples, diffusion=diffusion, seed=0)
    assert set(out) == {"validity", "uniqueness", "novelty", "internal_diversity", "log_likelihood",
                        "log_likelihood_median"}
    assert out["validity"] == 1.0 and out["uniqueness"] == pytest.approx(2 / 3) and out["novelty"] == 0.5
    assert np.isfinite(out["log_likelihood"]) and out["log_likelihood"] < 0


def test_smiles_format_writes_a_smiles_file(tmp_path, vocab):
    domain = MoleculeDomain()
    samples = encode(vocab, ["OCC", "c1ccccc1"])
    texts = domain.to_text(samples)
    assert texts == ["CCO", "c1ccccc1"]
    [path] = domain.write_native(tmp_path, samples=samples, texts=texts, rewards=[0.4, 0.5], indices=[7, 8])
    assert path.read_text() == "CCO\tsample_7\nc1ccccc1\tsample_8\n"
    supplier = Chem.SmilesMolSupplier(str(path), delimiter="\t", titleLine=False)
    assert [m.GetProp("_Name") for m in supplier] == ["sample_7", "sample_8"]
    assert not list(tmp_path.glob("*.partial"))


# --------------------------------------------------------------------------------------- #
# DataModule
# --------------------------------------------------------------------------------------- #


@pytest.fixture
def smi_with_error(tmp_path) -> Path:
    path = tmp_path / "mols.smi"
    path.write_text("smiles name\nCCO ethanol\n\nC1CC(C)C1 bad_ring_is_fine\nCC(C)(C)(C)(C)C pentavalent\n"
                    "c1ccccc1 benzene\nC[Si](C)(C)C silane\n" + "".join(f"{s} d{i}\n" for i, s in enumerate(DRUGS)))
    return path


def test_unparseable_smiles_is_a_data_error_naming_the_line(smi_with_error):
    data = MoleculeDataModule(path=str(smi_with_error), seq_len=L)
    with pytest.raises(DataError) as info:
        data.setup("fit")
    message = str(info.value)
    assert str(smi_with_error) in message and "line 5" in message and "skip_invalid=true" in message


def test_skip_invalid_drops_and_counts(smi_with_error):
    data = MoleculeDataModule(path=str(smi_with_error), seq_len=L, skip_invalid=True, val_fraction=0.2, seed=1)
    data.setup("fit")
    s = data.stats
    assert (s["molecules"], s["invalid"], s["out_of_vocab"], s["kept"]) == (11, 1, 1, 9)  # silane: [Si]
    assert s["unknown_tokens"] == {"[Si]": 1}
    assert data.train_tokens.shape == (7, L) and data.val_tokens.shape == (2, L)
    assert data.train_tokens.dtype == torch.long
    assert sorted(data.train_smiles + data.val_smiles) == sorted(
        canonical_smiles(x) for x in ["CCO", "C1CC(C)C1", "c1ccccc1", *DRUGS])
    batch = next(iter(data.train_dataloader()))
    assert batch["tokens"].shape[1] == L
    again = MoleculeDataModule(path=str(smi_with_error), seq_len=L, skip_invalid=True, val_fraction=0.2, seed=1)
    again.setup()
    assert torch.equal(again.train_tokens, data.train_tokens)
    other = MoleculeDataModule(path=str(smi_with_error), seq_len=L, skip_invalid=True, val_fraction=0.2, seed=2)
    other.setup()
    assert other.val_smiles != data.val_smiles
    short = MoleculeDataModule(path=str(smi_with_error), seq_len=12, skip_invalid=True)
    short.setup()
    assert short.stats["too_long"] > 0 and short.stats["kept"] == 9 - short.stats["too_long"]


def test_csv_with_smiles_column_and_missing_column(tmp_path):
    path = tmp_path / "mols.csv"
    pd.DataFrame({"id": range(len(DRUGS)), "SMILES": DRUGS}).to_csv(path, index=False)
    data = MoleculeDataModule(path=str(path), seq_len=L, val_fraction=0.0)
    data.setup()
    assert data.train_tokens.shape == (len(DRUGS), L) and data.val_tokens.shape == (0, L)
    with pytest.raises(DataError, match="data.smiles_column"):
        MoleculeDataModule(path=str(path), smiles_column="smi").setup()
    bad = tmp_path / "bad.csv"
    bad.write_text("smiles\nCCO\nC1CC\n")
    with pytest.raises(DataError, match="line 3"):
        MoleculeDataModule(path=str(bad)).setup()


def test_label_columns_for_the_oracle_stage(tmp_path, smi_with_error):
    path = tmp_path / "labelled.csv"
    labels = ["0.5", "", "1.5", "2.5", "3.5", "4.5"]
    pd.DataFrame({"smiles": DRUGS, "y": labels}).to_csv(path, index=False)
    data = MoleculeDataModule(path=str(path), seq_len=L, label_columns=["y"], val_fraction=0.0)
    data.setup()
    assert data.stats["dropped_missing_label"] == 1 and data.label_names == ["y"]
    assert data.train_labels.dtype == torch.float32 and data.train_labels.shape == (5, 1)
    assert sorted(data.train_labels.flatten().tolist()) == [0.5, 1.5, 2.5, 3.5, 4.5]
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"tokens", "labels"} and batch["labels"].shape[1] == 1
    path.write_text("smiles,y\nCCO,1\nCCC,high\n")
    with pytest.raises(DataError, match="line 3"):
        MoleculeDataModule(path=str(path), label_columns=["y"]).setup()
    with pytest.raises(DataError, match="no label columns"):
        MoleculeDataModule(path=str(smi_with_error), label_columns=["y"]).setup()


def test_moses_default_reads_the_first_molecules():
    data = MoleculeDataModule(max_molecules=300, seq_len=L)
    data.setup()
    assert data.data_path == moses_path("train")
    assert data.stats["molecules"] == 300 and data.stats["out_of_vocab"] == 0
    assert data.stats["kept"] + data.stats["too_long"] == 300


def test_missing_molsets_says_run_make_setup(monkeypatch):
    import datamodules.molecule as module

    monkeypatch.setattr(module, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="make setup"):
        MoleculeDataModule().setup()


# --------------------------------------------------------------------------------------- #
# Configs and entry points
# --------------------------------------------------------------------------------------- #


def test_domain_config_instantiates_every_part():
    from hydra.utils import instantiate

    from svdd_lightning.build import split_checkpoint
    from svdd_lightning.reward_choice import own_reward_node
    from tests.test_configs import compose_decode

    for reward in ("qed", "sa", "logp"):
        cfg = compose_decode("domain=molecule", f"reward={reward}")
        assert instantiate(own_reward_node(cfg)).name == reward  # the reward's own keys, not its name mapping
    node, checkpoint = split_checkpoint(cfg.diffusion)
    diffusion = instantiate(node)
    assert diffusion.vocab_size == 26 and diffusion.seq_len == L and checkpoint.startswith("checkpoints/molecule")
    assert isinstance(instantiate(cfg.data), MoleculeDataModule)
    domain = instantiate(cfg.objects)
    assert isinstance(domain, MoleculeDomain) and domain.native_name == "samples.smi"


TINY = ["domain=molecule", "steps=4", "diffusion.network.channels=8", "diffusion.network.num_layers=2",
        "value_network.channels=8", "value_network.num_layers=2", "trainer.enable_progress_bar=false"]


@pytest.mark.slow  # 15-30 s of subprocess runs; `make test-slow`
def test_train_then_decode_end_to_end(tmp_path):
    smiles = pd.read_csv(moses_path("test"), nrows=64)["SMILES"]
    data_file = tmp_path / "train.smi"
    data_file.write_text("".join(f"{s}\tm{i}\n" for i, s in enumerate(smiles)))
    out = tmp_path / "pretrain"
    run("train.py", "stage=pretrain", f"data.path={data_file}", "data.batch_size=16", "trainer.max_steps=3",
        "pretrain.val_check_interval=2", f"output_dir={out}", *TINY, tmp=tmp_path)
    hashes = out / "train_smiles_hashes.npy"
    assert (out / "pretrained.ckpt").is_file() and np.load(hashes).shape == (63,)  # 64 minus 1 for validation

    dec = tmp_path / "decode"
    proc = run("decode.py", "decoder=svdd_pm", "logger=none", f"diffusion.checkpoint={out / 'pretrained.ckpt'}",
               f"objects.naturalness_reference={hashes}", "num_samples=6", "batch_size=3", "decoder.num_candidates=3",
               f"output_dir={dec}", *TINY, tmp=tmp_path)
    assert "median" in proc.stdout
    summary = json.loads((dec / "summary.json").read_text())
    assert summary["domain"] == "molecule" and summary["reward"] == "qed"
    assert {"validity", "uniqueness", "novelty", "internal_diversity", "log_likelihood"} <= set(summary["naturalness"])
    rows = list(csv.DictReader(open(dec / "samples.csv")))
    assert [int(r["index"]) for r in rows] == list(range(6))
    smi_lines = (dec / "samples.smi").read_text().splitlines()
    assert [line.split("\t") for line in smi_lines] == [[r["sample"], f"sample_{r['index']}"] for r in rows]
    for r in rows:  # SVDD keeps masks out of the final samples, so every SMILES is a molecule
        mol = Chem.MolFromSmiles(r["sample"])
        assert mol is not None and mol.GetNumAtoms() > 0
        assert float(r["reward"]) == pytest.approx(QED.qed(mol), abs=1e-5)
    assert not list(dec.glob("*.partial*"))
