"""Inpainting (svdd_lightning/inpainting.py): decoding from seeds with some positions masked, with every decoder,
and the antibody domain's CDR-H3 redesign on AntiBERTy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import svdd_lightning as svdd
from svdd_lightning.errors import ConfigError, DataError
from svdd_lightning.inpainting import build_inpainting, parse_ranges
from tests.helpers import tiny_masked

SEEDS = ["ACGTACGTACGTACGTACGT", "TTTTGGGGCCCCAAAATTTT", "GATTACAGATTACAGATTAC"]


def write_fasta(path: Path, seqs, headers=None) -> Path:
    headers = headers or [f"seed_{k}" for k in range(len(seqs))]
    path.write_text("".join(f">{h}\n{s}\n" for h, s in zip(headers, seqs)))
    return path


def gc(seqs):
    return [sum(c in "GC" for c in s) / len(s) for s in seqs]


@pytest.mark.parametrize("decoder", ["pretrained", "best_of_n", "svdd_pm", "smc", "svdd_r"])
def test_every_decoder_redesigns_only_the_masked_positions(tmp_path, decoder):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    inpainting = build_inpainting(fasta=str(write_fasta(tmp_path / "s.fa", SEEDS)), mask="6-10", domain=domain,
                                  diffusion=diffusion)
    assert inpainting.first_step == 2 and inpainting.timesteps() == [2, 1]  # 5 of 20 masked: mask probability 2/8
    options = {} if decoder == "pretrained" else {"num_candidates": 3}
    result = svdd.decode(diffusion=diffusion, reward=gc, domain=domain, decoder=decoder, decoder_options=options,
                         num_samples=6, batch_size=3, seed=0, naturalness=False, init=inpainting)
    assert result.summary["init"]["start_step"] == 2 and result.summary["init"]["num_seeds"] == 3
    for index, text in zip(result.indices, result.texts):
        seed = SEEDS[index % 3]
        assert text[:5] == seed[:5] and text[10:] == seed[10:] and set(text) <= set("ACGT")
    assert result.summary["calls_per_sample"]["denoiser"] <= 2 * 3 + 1  # two steps, not eight
    # The diffusion holds nothing of the seeds: a decode without init= starts from the prior, on the whole grid.
    assert diffusion.timesteps() == list(range(8, 0, -1))
    plain = svdd.decode(diffusion=diffusion, reward=gc, domain=domain, decoder=decoder, decoder_options=options,
                        num_samples=3, batch_size=3, seed=0, naturalness=False)
    assert "init" not in plain.summary and any(text[:5] != SEEDS[i][:5] for i, text in enumerate(plain.texts))


def test_init_options_and_a_built_inpainting_give_the_same_samples(tmp_path):
    """decode(init={"fasta": ..., "mask": ...}) takes the options init.fasta= / init.mask= take on the command line."""
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    fasta = str(write_fasta(tmp_path / "s.fa", SEEDS))
    run = lambda init: svdd.decode(diffusion=diffusion, reward=gc, domain=domain, decoder="svdd_r",  # noqa: E731
                                   decoder_options={"num_candidates": 3, "resample_fraction": 0.5}, num_samples=6,
                                   batch_size=6, seed=0, naturalness=False, init=init)
    built = run(build_inpainting(fasta=fasta, mask="6-10", domain=domain, diffusion=diffusion))
    given = run({"fasta": fasta, "mask": "6-10"})
    assert torch.equal(built.samples, given.samples) and built.summary["init"] == given.summary["init"]
    with pytest.raises(ConfigError, match="masks is not an option of init"):
        run({"fasta": fasta, "masks": "6-10"})


def test_a_fraction_mask_depends_on_the_sample_index_only(tmp_path):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    inpainting = build_inpainting(fasta=str(write_fasta(tmp_path / "s.fa", SEEDS)), mask="0.25", domain=domain,
                                  diffusion=diffusion)
    a = inpainting.starts(torch.tensor([0, 1, 2, 3]), seed=0)
    b = inpainting.starts(torch.tensor([3]), seed=0)
    assert torch.equal(a[3], b[0]) and ((a == 4).sum(1) == 5).all()
    assert not torch.equal(a[0] == 4, a[3] == 4)  # another index, other positions (same seed sequence)


def test_bad_seeds_and_masks_are_clear_errors(tmp_path):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20)
    fasta = str(write_fasta(tmp_path / "s.fa", SEEDS))
    with pytest.raises(DataError, match="does not exist"):
        build_inpainting(fasta=str(tmp_path / "none.fa"), mask="1-3", domain=domain, diffusion=diffusion)
    (tmp_path / "bad.fa").write_text("ACGT\n")
    with pytest.raises(DataError, match="is not FASTA"):
        build_inpainting(fasta=str(tmp_path / "bad.fa"), mask="1-3", domain=domain, diffusion=diffusion)
    with pytest.raises(DataError, match="outside the alphabet"):
        build_inpainting(fasta=str(write_fasta(tmp_path / "x.fa", ["ACGTXACGT"])), mask="1-3", domain=domain,
                         diffusion=diffusion)
    with pytest.raises(DataError, match="lengths"):
        build_inpainting(fasta=str(write_fasta(tmp_path / "l.fa", ["ACGT", "ACGTA"])), mask="1-3", domain=domain,
                         diffusion=diffusion)
    with pytest.raises(ConfigError, match="outside positions 1..20"):
        build_inpainting(fasta=fasta, mask="15-25", domain=domain, diffusion=diffusion)
    with pytest.raises(ConfigError, match="locates no named regions"):
        build_inpainting(fasta=fasta, mask="cdr_h3", domain=domain, diffusion=diffusion)
    with pytest.raises(DataError, match="no mask=START-END"):
        build_inpainting(fasta=fasta, mask="header", domain=domain, diffusion=diffusion)
    with_headers = write_fasta(tmp_path / "h.fa", SEEDS[:2], ["a mask=1-2", "b mask=3-6,9"])
    masks = build_inpainting(fasta=str(with_headers), mask="header", domain=domain, diffusion=diffusion).masks
    assert masks[0].nonzero()[:, 0].tolist() == [0, 1] and masks[1].nonzero()[:, 0].tolist() == [2, 3, 4, 5, 8]
    assert parse_ranges("5,10-12", 12, what="x").nonzero()[:, 0].tolist() == [4, 9, 10, 11]


# The antibody domain ------------------------------------------------------------------------------------------
FIXTURE = Path(__file__).parent / "fixtures" / "antiberty_reference.npz"


def test_cdr_h3_by_the_kabat_rule():
    from svdd_lightning.domains.antibodies import cdr_h3_range

    heavy = str(np.load(FIXTURE)["heavy"])
    start, end = cdr_h3_range(heavy)
    assert (start, end) == (99, 109) and heavy[start - 1:end] == "WGGDGFYAMDY"
    with pytest.raises(ValueError, match="no CDR-H3"):
        cdr_h3_range("EVQLVESGGGLVQPGG")


@pytest.fixture(scope="module")
def antiberty_diffusion():
    from svdd_lightning.networks.antiberty import antiberty_diffusion

    return antiberty_diffusion(seq_len=120, num_steps=64)


@pytest.mark.slow  # 227 model calls, about 10 s
def test_pseudo_log_likelihood_matches_antibertys_own(antiberty_diffusion):
    """AntiBERTyRunner.pseudo_log_likelihood (mean log-probability, each residue masked in turn) of trastuzumab's
    chains, recorded in the fixture, against the antibody domain's."""
    from svdd_lightning.domains.antibodies import AntibodyDomain

    domain = AntibodyDomain()
    reference = np.load(FIXTURE)
    for k, chain in enumerate(("heavy", "light")):
        tokens = domain.from_objects([str(reference[chain])])[0]
        pll = domain.pseudo_log_likelihood(antiberty_diffusion, tokens, torch.ones(len(tokens), dtype=torch.bool))
        assert pll == pytest.approx(float(reference["pll"][k]), abs=1e-4)


def test_antibody_cdr_h3_redesign_through_decode_py(tmp_path, monkeypatch):
    from svdd_lightning.domains.antibodies.domain import cdr_h3_range
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode
    from tests.test_logos import spy_on_logos

    drawn = spy_on_logos(monkeypatch)

    out = tmp_path / "ab"
    cfg = compose_decode("domain=antibody", "decoder=svdd_pm", "decoder.num_candidates=2", "num_samples=2",
                         "batch_size=2", "logger=none", "trainer.enable_progress_bar=false", f"output_dir={out}")
    summary = run_decode(cfg)
    assert summary["init"]["start_step"] == 6 and summary["init"]["num_seeds"] == 2
    assert {"pseudo_log_likelihood", "identity_to_seed"} <= set(summary["naturalness"])
    from Bio import SeqIO

    designs = [str(r.seq) for r in SeqIO.parse(out / "samples.fasta", "fasta")]
    seeds = [str(r.seq) for r in SeqIO.parse(Path(__file__).parents[1] / "svdd_lightning/resources/antibody_seeds.fasta",
                                            "fasta")]
    for design, seed in zip(designs, seeds):
        assert design[:98] == seed[:98] and design[109:] == seed[109:]
    # The sequence logo covers CDR-H3 of the seeds only, at its real positions (samples_logo.png).
    (matrix, title), = drawn
    region = sorted({p for seed in seeds for p in range(cdr_h3_range(seed)[0], cdr_h3_range(seed)[1] + 1)})
    assert matrix.index.tolist() == region and "redesigned region" in title and (out / "samples_logo.png").is_file()
    from Bio.SeqUtils.ProtParam import ProteinAnalysis

    import csv

    rows = list(csv.DictReader(open(out / "samples.csv")))
    assert float(rows[0]["reward"]) == pytest.approx(-ProteinAnalysis(designs[0]).gravy(), abs=1e-5)


# Refinement ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decoder", ["pretrained", "svdd_pm", "smc"])
def test_refinement_keeps_the_better_design_every_round(decoder):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    options = {"refine_rounds": 3, "refine_fraction": 0.25, **({} if decoder == "pretrained" else {"num_candidates": 3})}
    refined = svdd.decode(diffusion=tiny_masked(seq_len=20, num_steps=8), reward=gc, domain=domain, decoder=decoder,
                          decoder_options=options, num_samples=6, batch_size=3, seed=0, naturalness=False)
    plain = svdd.decode(diffusion=tiny_masked(seq_len=20, num_steps=8), reward=gc, domain=domain, decoder=decoder,
                        decoder_options={k: v for k, v in options.items() if not k.startswith("refine")},
                        num_samples=6, batch_size=3, seed=0, naturalness=False)
    medians = refined.summary["refine"]["median_per_round"]
    assert refined.summary["refine"]["rounds"] == 3 and len(medians) == 4
    assert medians == sorted(medians)  # the better design is kept, so no round lowers a reward
    assert medians[0] == pytest.approx(float(np.median(plain.rewards)))  # round 0 is the plain decode
    assert (refined.rewards >= plain.rewards - 1e-6).all()
    assert refined.summary["calls_per_sample"]["denoiser"] > plain.summary["calls_per_sample"]["denoiser"]
    assert refined.summary["decoder_settings"]["refine_rounds"] == 3


def test_refinement_of_an_inpainting_decode_stays_in_the_region(tmp_path):
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    seeds = build_inpainting(fasta=str(write_fasta(tmp_path / "s.fa", SEEDS)), mask="6-13", domain=domain,
                             diffusion=diffusion)
    result = svdd.decode(diffusion=diffusion, reward=gc, domain=domain, decoder="svdd_pm",
                         decoder_options={"num_candidates": 2, "refine_rounds": 2, "refine_fraction": 0.5},
                         num_samples=3, batch_size=3, seed=0, naturalness=False, init=seeds)
    for index, text in zip(result.indices, result.texts):
        assert text[:5] == SEEDS[index % 3][:5] and text[13:] == SEEDS[index % 3][13:]


def test_molecules_start_from_smiles(tmp_path):
    from svdd_lightning.tasks.decode import run_decode
    from tests.test_configs import compose_decode

    seeds = tmp_path / "seeds.smi"
    seeds.write_text("CCO ethanol\nc1ccccc1O phenol\n")
    out = tmp_path / "mol"
    cfg = compose_decode("domain=molecule", f"init.smiles={seeds}", "init.mask=0.2", "decoder=pretrained", "steps=8",
                         "num_samples=2", "batch_size=2", "logger=none", "compute_naturalness=false",
                         "trainer.enable_progress_bar=false", f"output_dir={out}")
    summary = run_decode(cfg)
    assert summary["init"]["seed_names"] == ["ethanol", "phenol"] and summary["init"]["start_step"] == 2
    bad = tmp_path / "bad.smi"
    bad.write_text("not_a_smiles\n")
    cfg = compose_decode("domain=molecule", f"init.smiles={bad}", "init.mask=0.2", "decoder=pretrained", "steps=8",
                         "num_samples=2", "logger=none", f"output_dir={tmp_path / 'bad'}")
    with pytest.raises(DataError, match="init.smiles=.*valid SMILES"):
        run_decode(cfg)


def test_small_regions_still_leave_the_decoder_a_stochastic_step(tmp_path):
    """One masked position of 20 with T = 8 would start at the final argmax step (t = 1), where nothing is drawn;
    decoding starts at t = 2 instead, for inpainting and for refinement alike."""
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20, num_steps=8)
    assert diffusion.step_for_fraction(1 / 20) == 2 and diffusion.step_for_fraction(0.0) == 2
    seeds = build_inpainting(fasta=str(write_fasta(tmp_path / "s.fa", SEEDS)), mask="7", domain=domain,
                             diffusion=diffusion)
    assert seeds.first_step == 2 and seeds.timesteps() == [2, 1]


def test_mask_specs_from_hydra_lists_and_chatty_headers(tmp_path):
    from omegaconf import OmegaConf

    domain = svdd.NucleotideDomain(alphabet="ACGT")
    diffusion = tiny_masked(seq_len=20)
    fasta = str(write_fasta(tmp_path / "s.fa", SEEDS[:1], ["a mask=2-3,5, the loop"]))
    listed = build_inpainting(fasta=fasta, mask=OmegaConf.create({"m": ["2-3", 5]}).m, domain=domain,
                              diffusion=diffusion)
    header = build_inpainting(fasta=fasta, mask="header", domain=domain, diffusion=diffusion)
    assert listed.masks[0].nonzero()[:, 0].tolist() == header.masks[0].nonzero()[:, 0].tolist() == [1, 2, 4]


def test_bad_refinement_options_and_domains_are_clear_errors():
    domain = svdd.NucleotideDomain(alphabet="ACGT")
    for options, match in (({"refine_rounds": -1}, "refine_rounds"), ({"refine_rounds": 1, "refine_fraction": None},
                                                                       "refine_fraction")):
        with pytest.raises(ConfigError, match=match):
            svdd.decode(diffusion=tiny_masked(), reward=gc, domain=domain, decoder="pretrained",
                        decoder_options=options, num_samples=2, naturalness=False)
    from tests.helpers import ddpm_alphas_cumprod, tiny_unet_denoiser

    from svdd_lightning.diffusion.gaussian import GaussianDiffusion

    gaussian = GaussianDiffusion(network=tiny_unet_denoiser(), event_shape=(1, 8, 8), num_steps=2,
                                      alphas_cumprod=ddpm_alphas_cumprod(), timestep_input="index")
    with pytest.raises(ConfigError, match="masked"):
        svdd.decode(diffusion=gaussian, reward=lambda xs: [0.0] * len(xs), decoder="pretrained",
                    decoder_options={"refine_rounds": 1}, num_samples=2, naturalness=False)
