"""Several rewards at once (rewards/multi.py): combination, config, outputs."""

from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from callbacks.decode_outputs import pareto_front, write_decode_outputs
from svdd_lightning.cli import expand_reward_list
from svdd_lightning.errors import ConfigError
from svdd_lightning.rewards.base import Reward
from svdd_lightning.rewards.multi import MultiReward
from tests.helpers import run
from tests.test_configs import compose_decode


class Column(Reward):
    """The mean of one column of a (B, 2) float batch (a differentiable toy reward)."""

    is_differentiable = True

    def __init__(self, column: int) -> None:
        super().__init__()
        self.column = column

    def forward(self, x0):
        return x0[:, self.column].float()


def test_weighted_sum_of_scaled_components_and_the_product_form():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    total = MultiReward(components={"a": Column(0), "b": Column(1)}, weights=[1.0, 2.0], scales=[0.5, 4.0])
    torch.testing.assert_close(total(x), torch.tensor([1 / 0.5 + 2 * 2 / 4.0, 3 / 0.5 + 2 * -1 / 4.0]))
    product = MultiReward(components={"a": Column(0), "b": Column(1)}, weights=[1.0, 2.0], combine="product",
                          alpha=2.0)
    torch.testing.assert_close(product(x), torch.tensor([math.exp((1 + 4) / 2), math.exp((3 - 2) / 2)]))
    assert total.name == "a+b" and total.is_differentiable
    values = total.component_values(x)
    assert list(values) == ["a", "b"] and torch.equal(values["b"], x[:, 1])


def test_bad_weights_and_combination_are_refused():
    with pytest.raises(ValueError, match="weights"):
        MultiReward(components={"a": Column(0), "b": Column(1)}, weights=[1.0])
    with pytest.raises(ValueError, match="combine"):
        MultiReward(components={"a": Column(0), "b": Column(1)}, combine="max")


def test_reward_list_on_the_command_line():
    assert expand_reward_list(["decode.py", "reward=[qed,sa]", "decoder=svdd_pm"]) == [
        "decode.py", "reward=multi", "reward.components=[qed,sa]", "decoder=svdd_pm"]
    assert expand_reward_list(["reward=qed"]) == ["reward=qed"]


def test_multi_config_builds_components_scaled_by_the_domain():
    from svdd_lightning.build import build_domain, build_reward

    cfg = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "reward.weights=[1,0.5]")
    reward = build_reward(cfg, build_domain(cfg))
    assert isinstance(reward, MultiReward)
    assert list(reward.components) == ["qed", "sa"] and reward.scales == [0.2, 0.1] and reward.weights == [1.0, 0.5]
    bad = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,mfe]")
    with pytest.raises(ConfigError, match="mfe"):
        build_reward(bad, build_domain(bad))


def test_pareto_front_keeps_the_non_dominated_points():
    xs = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    ys = np.array([3.0, 2.5, 1.0, 0.5, 0.5])
    assert pareto_front(xs, ys).tolist() == [0, 1, 2]


def test_outputs_hold_each_component_and_a_pareto_plot(tmp_path):
    from tests.helpers import molecule_domain

    domain = molecule_domain()
    samples = torch.randint(0, 10, (6, 48))
    components = {"qed": np.linspace(0.1, 0.6, 6), "sa": np.linspace(0.9, 0.4, 6)}
    result = SimpleNamespace(indices=list(range(6)), samples=samples, rewards=np.arange(6.0),
                             texts=domain.to_text(samples),
                             summary={"reward": "qed+sa", "decoder": "svdd_pm", "components": {}},
                             components=components)
    files = write_decode_outputs(tmp_path, result=result, domain=domain)
    rows = list(csv.DictReader(open(tmp_path / "samples.csv")))
    assert [float(r["reward_sa"]) for r in rows] == pytest.approx(components["sa"].tolist())
    assert tmp_path / "pareto.png" in files and (tmp_path / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
def test_decode_with_two_rewards_end_to_end(tmp_path):
    out = tmp_path / "run"
    run("decode.py", "domain=molecule", "reward=[qed,sa]", "decoder=svdd_pm", "decoder.num_candidates=2",
        "steps=4", "num_samples=4", "batch_size=4", "logger=none", f"output_dir={out}", tmp=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"] == "qed+sa" and set(summary["components"]) == {"qed", "sa"}
    rows = list(csv.DictReader(open(out / "samples.csv")))
    assert {"reward_qed", "reward_sa"} <= set(rows[0]) and (out / "pareto.png").is_file()
