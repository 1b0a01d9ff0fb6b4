"""Sequence logos of decoded samples (svdd_lightning/domains/logos.py): the information matrix, the logo a DNA
decode and an inpainting decode write (samples_logo.png), restricted to the redesigned region, and none for a
domain that is not sequences."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import svdd_lightning as svdd
from callbacks.decode_outputs import redesigned_positions, write_decode_outputs
from svdd_lightning.domains import logos
from svdd_lightning.domains.logos import logo_matrix, region_label
from svdd_lightning.inpainting import build_inpainting
from svdd_lightning.starts import Start
from tests.helpers import tiny_masked

SEEDS = ["ACGTACGTACGTACGTACGT", "TTTTGGGGCCCCAAAATTTT", "GATTACAGATTACAGATTAC"]


def gc(seqs):
    return [sum(c in "GC" for c in s) / len(s) for s in seqs]


def test_logo_matrix_is_information_in_bits_at_one_based_positions():
    matrix = logo_matrix(["AAGC", "AAGT", "ACGA", "ATGG"], alphabet="ACGT")
    assert matrix.index.tolist() == [1, 2, 3, 4] and matrix.columns.tolist() == list("ACGT")
    bits = matrix.sum(axis=1)
    assert bits[1] == pytest.approx(2.0) and bits[3] == pytest.approx(2.0)  # all A, all G: log2(4)
    assert bits[4] == pytest.approx(0.0, abs=1e-6)  # C, T, A, G: uniform
    assert matrix.loc[1, "A"] == pytest.approx(2.0) and matrix.loc[1, ["C", "G", "T"]].sum() == pytest.approx(0.0)
    # position 2: A A C T -> p = (1/2, 1/4, 0, 1/4), 2 - H = 2 - 1.5 = 0.5 bits, split by frequency
    assert bits[2] == pytest.approx(0.5) and matrix.loc[2, "A"] == pytest.approx(0.25)


def test_logo_matrix_covers_exactly_the_given_positions_and_counts_only_redesigned_samples():
    seqs = ["ACGTAC", "GCGTTC", "TCGAAC"]
    matrix = logo_matrix(seqs, [2, 4, 5], alphabet="ACGT")
    assert matrix.index.tolist() == [2, 4, 5] and matrix.index.name == "pos"
    # Each position counts only the samples that redesigned it: sample 0 at position 1, sample 1 at 5.
    counted = np.zeros((3, 6), dtype=bool)
    counted[0, 0] = counted[1, 4] = counted[2, 4] = True
    only = logo_matrix(seqs, [1, 5], alphabet="ACGT", counted=counted)
    assert only.loc[1, "A"] == pytest.approx(2.0)  # just sample 0's A (all three samples would give 0.42 bits)
    assert only.loc[5].sum() == pytest.approx(1.0)  # T and A, one each
    with pytest.raises(ValueError, match="no sample counts at positions \\[2\\]"):
        logo_matrix(seqs, [2], alphabet="ACGT", counted=counted)
    with pytest.raises(ValueError, match="within 1..6"):
        logo_matrix(seqs, [0, 3], alphabet="ACGT")


def test_region_label():
    assert region_label([5, 10, 11, 12]) == "5,10-12" and region_label([89, 90, 91]) == "89-91"
    assert region_label([7]) == "7"


def test_weak_logos_are_scaled_to_their_tallest_stack_and_strong_ones_to_the_full_height():
    assert logos.logo_height(1.2, 2.0) == 2.0 and logos.logo_height(0.26, 2.0) == pytest.approx(0.3)
    assert logos.logo_height(0.0, 4.32) == pytest.approx(0.1)


def test_a_dna_decode_writes_a_logo_of_its_samples(tmp_path, monkeypatch):
    drawn = spy_on_logos(monkeypatch)
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    result = svdd.decode(diffusion=tiny_masked(seq_len=20, num_steps=4), reward=gc, domain=domain,
                         decoder="svdd_pm", decoder_options={"num_candidates": 2}, num_samples=6, batch_size=6,
                         seed=0, naturalness=False)
    files = write_decode_outputs(tmp_path, result=result, domain=domain)
    logo = tmp_path / "samples_logo.png"
    assert logo in files and (tmp_path / "samples_positions.png") in files
    width, height = Image.open(logo).size
    assert width > 500 and height > 200
    (matrix, title), = drawn
    assert matrix.index.tolist() == list(range(1, 21)) and title.startswith("Sequence logo of 6 samples (svdd_pm")
    assert matrix.to_numpy().sum(axis=1).max() <= 2.0 + 1e-9


def test_an_inpainting_logo_covers_the_redesigned_region_only(tmp_path, monkeypatch):
    drawn = spy_on_logos(monkeypatch)
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    fasta = tmp_path / "seeds.fa"
    fasta.write_text("".join(f">seed_{k}\n{s}\n" for k, s in enumerate(SEEDS)))
    init = build_inpainting(fasta=str(fasta), mask="6-10", domain=domain, diffusion=diffusion)
    result = svdd.decode(diffusion=diffusion, reward=gc, domain=domain, decoder="svdd_pm",
                         decoder_options={"num_candidates": 2}, num_samples=6, batch_size=6, seed=0,
                         naturalness=False, init=init)
    out = tmp_path / "out"
    out.mkdir()
    files = write_decode_outputs(out, result=result, domain=domain, init=init)
    assert out / "samples_logo.png" in files
    (matrix, title), = drawn
    assert matrix.index.tolist() == [6, 7, 8, 9, 10]
    assert "redesigned region 6-10 (5 of 20 positions), 6 samples" in title
    # The same matrix as the pure function's over the masked positions.
    expected = logo_matrix(result.texts, [6, 7, 8, 9, 10], alphabet="ACGT")
    assert np.allclose(matrix.to_numpy(), expected.to_numpy())


def test_a_fraction_mask_gives_each_sample_its_own_redesigned_positions(tmp_path):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    fasta = tmp_path / "seeds.fa"
    fasta.write_text("".join(f">seed_{k}\n{s}\n" for k, s in enumerate(SEEDS)))
    init = build_inpainting(fasta=str(fasta), mask=0.25, domain=domain, diffusion=diffusion)
    indices = [0, 1, 2, 3, 7]
    got = redesigned_positions(init, indices, seed=3)
    assert torch.equal(got, init.starts(torch.tensor(indices), seed=3) == init.mask_index)
    assert got.sum(dim=1).tolist() == [5] * 5 and not torch.equal(got[0], got[1])
    assert redesigned_positions(None, indices, seed=3) is None


def test_a_domain_that_is_not_sequences_writes_no_logo(tmp_path):
    from tests.helpers import molecule_domain

    domain = molecule_domain()
    samples = torch.randint(0, 10, (4, 48))
    result = SimpleNamespace(indices=list(range(4)), samples=samples, rewards=np.arange(4.0),
                             texts=domain.to_text(samples), summary={"reward": "qed", "decoder": "svdd_pm", "seed": 0})
    # A start plan is given, but the molecule domain's draw_media takes no ``redesigned``: it is not passed.
    plan = SimpleNamespace(start=lambda indices, seed: Start(states=samples[indices], first_step=2))
    files = write_decode_outputs(tmp_path, result=result, domain=domain, init=plan)
    assert not (tmp_path / "samples_logo.png").exists() and not any("logo" in Path(f).name for f in files)
    assert (tmp_path / "reward_hist.png").is_file()


def test_leftover_masks_and_rna_letters_are_drawn_without_error(tmp_path, monkeypatch):
    drawn = spy_on_logos(monkeypatch)
    from tests.helpers import rna_domain

    domain = rna_domain()
    texts = ["ACGUN", "ACGAN", "UCGAN"]  # the last position is a leftover mask (N) in every sample
    assert domain.plot_logo(tmp_path / "samples_logo.png", texts) == tmp_path / "samples_logo.png"
    (matrix, _), = drawn
    assert matrix.index.tolist() == [1, 2, 3, 4] and matrix.columns.tolist() == list("ACGU")
    assert domain.plot_logo(tmp_path / "none.png", ["NNNN"]) is None and not (tmp_path / "none.png").exists()


def spy_on_logos(monkeypatch):
    """Record the matrix and title of each logo drawn (and still draw it)."""
    drawn = []
    real = logos.plot_logo

    def plot(path, matrix, *, title, **kwargs):
        drawn.append((matrix, title))
        return real(path, matrix, title=title, **kwargs)

    monkeypatch.setattr(logos, "plot_logo", plot)
    return drawn
