"""Ehrlich functions (holo) as a domain: the reward against holo's own values, feasibility counted exactly, the
Markov-process training data, the checkpoint check, and decode.py on the shipped preset."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("holo")

from svdd_lightning.domains.ehrlich import EhrlichDomain, dmp_log_likelihood, ehrlich_values, holo_ehrlich  # noqa: E402
from svdd_lightning.errors import CheckpointError, ConfigError  # noqa: E402
from svdd_lightning.rewards.ehrlich import EhrlichReward  # noqa: E402
from tests.helpers import ROOT, run  # noqa: E402

SMALL = {"num_states": 8, "dim": 12, "num_motifs": 2, "motif_length": 3, "quantization": 3, "random_seed": 1}


def infeasible_row(function) -> torch.Tensor:
    """A sequence with a banned transition (a zero in the transition matrix) at its start."""
    banned = (function.transition_matrix == 0).nonzero()
    assert len(banned), "the function bans no transition"
    a, b = banned[0].tolist()
    row = function.optimal_solution().clone()
    row[0], row[1] = a, b
    return row


def test_the_reward_is_holos_value_with_a_floor_for_infeasible_and_masked_rows():
    reward = EhrlichReward(**SMALL)
    f = reward.function
    best = f.optimal_solution()
    natural = f.initial_solution(6)
    bad = infeasible_row(f)
    masked = best.clone()
    masked[3] = SMALL["num_states"]  # the masked diffusion's mask id
    x = torch.stack([best, *natural, bad, masked])
    got = reward(x)
    assert got[0].item() == 1.0  # holo's optimum
    assert torch.allclose(got[1:7].double(), f(natural).double())  # holo's own values where feasible
    assert got[7].item() == -1.0 and got[8].item() == -1.0  # the floor, never -inf
    assert torch.isfinite(got).all()


def test_the_floor_must_lie_below_every_feasible_value():
    with pytest.raises(ValueError, match="infeasible_value"):
        EhrlichReward(**SMALL, infeasible_value=0.0)


def test_feasibility_and_the_objective_are_counted_exactly():
    domain = EhrlichDomain(**SMALL)
    f = domain.function
    x = torch.stack([f.optimal_solution(), *f.initial_solution(3), infeasible_row(f)])
    ll = dmp_log_likelihood(f, x)
    assert torch.isfinite(ll[:4]).all() and ll[4] == -float("inf")
    values = ehrlich_values(f, x)
    assert values[0] == 1.0 and values[4] == -float("inf")
    text = domain.to_text(x)
    assert all(len(t) == SMALL["dim"] for t in text)
    assert torch.equal(domain.from_objects(text), x)  # letters 0-7 round-trip


def test_naturalness_reports_feasible_and_solved_fractions_and_the_best_value():
    from svdd_lightning.diffusion.masked import MaskedDiffusion
    from svdd_lightning.networks.sequence import SequenceDenoiser

    domain = EhrlichDomain(**SMALL)
    f = domain.function
    x = torch.stack([f.optimal_solution(), *f.initial_solution(2), infeasible_row(f)])
    torch.manual_seed(0)
    diffusion = MaskedDiffusion(network=SequenceDenoiser(vocab_size=8, channels=8, num_layers=1, time_dim=8),
                                vocab_size=8, seq_len=SMALL["dim"], num_steps=4).eval()
    out = domain.naturalness(x, diffusion=diffusion, seed=0)
    assert out["feasible_fraction"] == pytest.approx(3 / 4)
    assert out["solved_fraction"] == pytest.approx(1 / 4)
    assert out["best_value"] == 1.0
    json.dumps(out, allow_nan=False)  # summary.json stays plain JSON


def test_the_training_data_are_samples_of_the_markov_process():
    from datamodules.ehrlich import EhrlichDataModule

    domain = EhrlichDomain(**SMALL)
    data = EhrlichDataModule(domain=domain, num_sequences=200, batch_size=16, val_fraction=0.1)
    data.setup("fit")
    assert data.train_tokens.shape == (180, SMALL["dim"]) and data.val_tokens.shape == (20, SMALL["dim"])
    everything = torch.cat([data.train_tokens, data.val_tokens])
    assert torch.isfinite(dmp_log_likelihood(domain.function, everything)).all()
    batch = next(iter(data.train_dataloader()))
    assert batch["tokens"].dtype == torch.long and batch["tokens"].shape == (16, SMALL["dim"])


def test_a_prior_of_another_markov_process_is_refused_by_name():
    domain = EhrlichDomain(**SMALL)
    domain.check_checkpoint("x.ckpt", {"ehrlich": {**SMALL, "num_motifs": 1}})  # motifs differ: same process
    with pytest.raises(CheckpointError, match=r"ehrlich.random_seed=1 \(checkpoint: 2\)"):
        domain.check_checkpoint("x.ckpt", {"ehrlich": {**SMALL, "random_seed": 2}})


def test_impossible_functions_are_refused_by_name():
    with pytest.raises(ConfigError, match="num_states"):
        holo_ehrlich(**{**SMALL, "num_states": 40})
    with pytest.raises(ConfigError, match="quantization"):
        holo_ehrlich(**{**SMALL, "quantization": 5})


def test_the_moderate_preset_loads_its_shipped_prior_and_refuses_another_domains():
    """The moderate prior is the hard prior's training labelled for its domain (scripts/ehrlich_shared_prior.py):
    it loads for domain ehrlich_moderate (its name and its Markov process checked, as decode.py checks them), not for
    ehrlich_hard, and its tensors are the hard file's."""
    from svdd_lightning.checkpoints import load_diffusion, load_state, load_tensors_only

    moderate, hard = (ROOT / f"checkpoints/ehrlich_{p}/pretrained.ckpt" for p in ("moderate", "hard"))
    domain = EhrlichDomain(num_states=32, dim=32, num_motifs=2, motif_length=4, quantization=4, random_seed=0)
    diffusion = load_diffusion(moderate, domain=domain)
    assert diffusion.vocab_size == 32 and diffusion.seq_len == 32
    load_state(diffusion, moderate, kind="diffusion", domain="ehrlich_moderate", prefix="diffusion.")
    with pytest.raises(CheckpointError, match="ehrlich_moderate"):
        load_state(diffusion, moderate, kind="diffusion", domain="ehrlich_hard", prefix="diffusion.")
    a, b = load_tensors_only(moderate), load_tensors_only(hard)
    assert a["svdd"]["domain"] == "ehrlich_moderate" and a["svdd"]["ehrlich"]["num_motifs"] == 2
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])


@pytest.mark.parametrize("preset", ["hard"])  # the moderate preset shares its prior: the test above
def test_decode_py_on_the_shipped_preset_reports_feasibility_and_the_optimum(tmp_path, preset):
    if not (ROOT / f"checkpoints/ehrlich_{preset}/pretrained.ckpt").is_file():
        pytest.fail(f"checkpoints/ehrlich_{preset}/pretrained.ckpt is not shipped")
    out = tmp_path / "run"
    run("decode.py", "domain=ehrlich", f"ehrlich={preset}", "decoder=svdd_pm", "decoder.num_candidates=2",
        "num_samples=4", "batch_size=4", "logger=none", f"output_dir={out}", "trainer.enable_progress_bar=false",
        tmp=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    nat = summary["naturalness"]
    assert 0.0 <= nat["feasible_fraction"] <= 1.0 and 0.0 <= nat["solved_fraction"] <= 1.0
    assert nat["feasible_fraction"] > 0  # the shipped prior keeps samples feasible
    assert nat["best_value"] == pytest.approx(summary["reward_stats"]["max"])  # a feasible sample is the best
    assert (out / "samples.fasta").read_text().startswith(">sample_0")


def test_the_reward_outside_the_ehrlich_domain_names_the_fix():
    from hydra import compose, initialize_config_dir

    from svdd_lightning.build import build_domain, build_reward
    from svdd_lightning.paths import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("decode", overrides=["domain=dna", "reward=ehrlich"])
    with pytest.raises(Exception) as info:  # Hydra wraps the constructor's error; the CLI prints the cause
        build_reward(cfg, build_domain(cfg))
    cause = info.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, ConfigError) and "domain=ehrlich" in str(cause)
