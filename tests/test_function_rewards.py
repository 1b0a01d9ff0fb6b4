"""Rewards as plain functions of objects (strings, SMILES), plugged in with reward._target_ through
decode.py's own code path, steer decoding: SVDD-PM beats pre-trained sampling under the same seeds."""

import numpy as np
import pytest

from svdd_lightning.tasks.decode import run_decode
from tests.test_configs import compose_decode

CASES = {
    "dna": ("tests.user_reward.gc_fraction", ["domain.seq_len=40", "steps=16"]),
    "rna": ("tests.user_reward.gc_fraction", ["steps=16"]),
    "molecule": ("tests.user_reward.nitrogen_count", ["steps=16", "reward.floor=0.0"]),
}


def decode_rewards(tmp_path, domain, decoder, target, extra):
    out = tmp_path / f"{domain}-{decoder}"
    cfg = compose_decode(f"domain={domain}", "reward=function", f"reward._target_={target}", f"decoder={decoder}",
                         "num_samples=12", "batch_size=12", "seed=0", "logger=none", "compute_naturalness=false",
                         "trainer.enable_progress_bar=false", f"output_dir={out}", *extra)
    summary = run_decode(cfg)
    rows = [line.split(",") for line in (out / "samples.csv").read_text().splitlines()[1:]]
    return summary, np.array([float(row[2]) for row in rows]), [row[1] for row in rows]


@pytest.mark.parametrize("domain", sorted(CASES))
def test_a_plain_function_reward_steers(domain, tmp_path):
    target, extra = CASES[domain]
    _, base, _ = decode_rewards(tmp_path, domain, "pretrained", target, extra)
    summary, steered, texts = decode_rewards(tmp_path, domain, "svdd_pm", target, extra)
    assert summary["reward"] == target.rsplit(".", 1)[1]
    assert summary["reward_cache"]["lookups"] > 0  # memoised by the framework
    assert np.mean(steered) > np.mean(base) + 0.02
    # The scores in samples.csv are the user's function of the written objects.
    from tests import user_reward

    fn = getattr(user_reward, target.rsplit(".", 1)[1])
    np.testing.assert_allclose(steered, fn(texts), rtol=1e-5, atol=1e-6)


def test_options_a_function_does_not_take_are_dropped_with_a_warning():
    from svdd_lightning.build import build_domain, build_reward

    cfg = compose_decode("domain=rna", "reward._target_=tests.user_reward.gc_fraction")  # mfe's temperature stays
    with pytest.warns(UserWarning, match="temperature.*ignored"):
        reward = build_reward(cfg, build_domain(cfg))
    assert reward.name == "gc_fraction"


def test_an_invalid_object_without_a_floor_is_a_clear_error():
    import torch

    from svdd_lightning.domains.nucleotides import NucleotideDomain
    from svdd_lightning.errors import RewardError
    from svdd_lightning.rewards.build import as_reward
    from tests.user_reward import gc_fraction

    reward = as_reward(gc_fraction, domain=NucleotideDomain(alphabet="ACGT"))
    assert reward(torch.tensor([[2, 1, 0, 3]])).tolist() == [0.5]
    with pytest.raises(RewardError, match="reward.floor"):
        reward(torch.tensor([[2, 1, 4, 3]]))  # a leftover mask token: no valid sequence
