"""Property-based tests (hypothesis): readers either read or refuse with a DataError, never
crash otherwise; decoders' argument checks accept exactly the valid values."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from datamodules.molecule import MoleculeDataModule
from datamodules.sequences import SequenceDataModule
from svdd_lightning.decoders.best_of_n import BestOfN
from svdd_lightning.decoders.dps import DPS
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD, SVDDR
from svdd_lightning.errors import DataError
from tests.helpers import gc_reward, tiny_value

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
letters = st.text(alphabet="ACGTNRYXJ*acgt-> \n,0123456789", max_size=200)


def read(module, text: str, suffix: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_text(text)
        dm = module(path)
        try:
            dm.setup("fit")
        except DataError as err:
            assert path.name in str(err)  # every refusal names the file
            return None
        return dm


@SETTINGS
@given(letters)
def test_fasta_reader_reads_or_refuses(text):
    dm = read(lambda p: SequenceDataModule(alphabet="ACGT", path=str(p), seq_len=4, val_fraction=0.0), text, ".fa")
    if dm is not None:
        assert dm.train_tokens.shape[1] == 4 and int(dm.train_tokens.max()) < 4


@SETTINGS
@given(st.lists(st.tuples(letters.filter(lambda s: "," not in s and "\n" not in s),
                          st.floats(allow_nan=True, allow_infinity=False, width=32)), max_size=12))
def test_csv_reader_reads_or_refuses(rows):
    text = "sequence,label\n" + "".join(f"{s},{v}\n" for s, v in rows)
    dm = read(lambda p: SequenceDataModule(alphabet="ACGT", path=str(p), seq_len=4, val_fraction=0.0,
                                           label_columns=["label"]), text, ".csv")
    if dm is not None:
        assert dm.train_labels.shape[0] == dm.train_tokens.shape[0]


@SETTINGS
@given(st.lists(st.sampled_from(["CCO", "c1ccccc1", "C(=O)O", "N#N", "not((", "", "Cl", "C1CC", "[Na+]"]),
                min_size=1, max_size=10), st.booleans())
def test_smiles_reader_reads_or_refuses(smiles, skip):
    dm = read(lambda p: MoleculeDataModule(path=str(p), seq_len=24, val_fraction=0.0, skip_invalid=skip,
                                           max_invalid_fraction=0.5), "\n".join(smiles) + "\n", ".smi")
    if dm is not None:
        assert dm.train_tokens.shape[1] == 24


@settings(max_examples=60, deadline=None)
@given(st.integers(-3, 30), st.floats(-2.0, 2.0), st.floats(-0.5, 1.5))
def test_decoder_argument_checks_accept_exactly_the_valid_values(m, alpha, fraction):
    reward, value = gc_reward(), tiny_value()
    cases = [
        (lambda: SVDD(reward=reward, value=value, num_candidates=m, alpha=alpha), m >= 1 and alpha >= 0),
        (lambda: BestOfN(reward=reward, num_candidates=m), m >= 1),
        (lambda: SVDDR(reward=reward, value=value, num_candidates=m, alpha=alpha, resample_fraction=fraction),
         m >= 1 and alpha >= 0 and 0 <= fraction <= 1),
        (lambda: SMC(reward=reward, value=value, alpha=alpha, ess_threshold=fraction), alpha > 0 and 0 <= fraction <= 1),
        (lambda: DPS(reward=reward, guidance_scale=alpha), alpha >= 0),
    ]
    for make, valid in cases:
        if valid:
            make()
        else:
            with pytest.raises(ValueError):
                make()
