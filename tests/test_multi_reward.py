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
from svdd_lightning.errors import ConfigError
from svdd_lightning.rewards.base import Reward
from svdd_lightning.rewards.multi import MultiReward
from svdd_lightning.values.base import ValueFunction
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


def test_a_reward_list_is_hydras_own_selection_of_several_options():
    """reward=[qed,sa] merges the two files; their name mappings merge into the chosen rewards (no argument is
    rewritten), and a single reward is built from its own keys alone."""
    from svdd_lightning.build import build_domain, build_reward
    from svdd_lightning.reward_choice import chosen_rewards

    cfg = compose_decode("domain=molecule", "reward=[qed,sa]", "reward.combine=product", "reward.alpha=2")
    assert chosen_rewards(cfg.reward) == {"qed": "qed", "sa": "sa"}
    reward = build_reward(cfg, build_domain(cfg))
    assert isinstance(reward, MultiReward) and list(reward.components) == ["qed", "sa"]
    assert reward.combine == "product" and reward.alpha == 2.0
    single = compose_decode("domain=molecule", "reward=sa")
    assert not isinstance(build_reward(single, build_domain(single)), MultiReward)
    with pytest.raises(ConfigError, match="function.*import path.*reward=multi reward.components"):
        build_reward(*(lambda c: (c, build_domain(c)))(compose_decode("domain=molecule", "reward=[qed,function]")))


def test_multi_config_builds_components_scaled_by_the_domain():
    from svdd_lightning.build import build_domain, build_reward

    cfg = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "reward.weights=[1,0.5]")
    reward = build_reward(cfg, build_domain(cfg))
    assert isinstance(reward, MultiReward)
    assert list(reward.components) == ["qed", "sa"] and reward.scales == [0.2, 0.1] and reward.weights == [1.0, 0.5]
    bad = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,mfe]")
    with pytest.raises(ConfigError, match="mfe"):
        build_reward(bad, build_domain(bad))


def test_an_import_path_in_a_reward_list_names_the_spelling_that_composes(tmp_path):
    proc = run("decode.py", "domain=molecule", "reward=[qed,tests.user_reward.nitrogen_count]", tmp=tmp_path,
               check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: reward=[qed,tests.user_reward.nitrogen_count]: an import path names no reward file, so a list with "
        "one is written reward=multi reward.components=[qed,tests.user_reward.nitrogen_count] (the same reward)."]


def test_a_plain_function_is_a_component_by_its_import_path():
    from svdd_lightning.build import build_domain, build_reward

    cfg = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,tests.user_reward.nitrogen_count]",
                         "reward.scales=[0.2,3]")
    reward = build_reward(cfg, build_domain(cfg))
    assert list(reward.components) == ["qed", "nitrogen_count"] and reward.scales == [0.2, 3.0]
    tokens = build_domain(cfg).from_objects(["CCN", "CNCN"])
    assert reward.component_values(tokens)["nitrogen_count"].tolist() == [1.0, 2.0]
    bad = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "reward.scales=[1]")
    with pytest.raises(ConfigError, match="scales"):
        build_reward(bad, build_domain(bad))


class ColumnValue(ValueFunction):
    gradient_in_state = True

    def __init__(self, column: int) -> None:
        super().__init__()
        self.column = column

    def forward(self, x_t, t):
        return x_t[:, self.column].float()


def test_multi_value_is_the_combination_of_its_components_and_counts_each_network():
    from svdd_lightning.values.multi import MultiValue

    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]])
    value = MultiValue(components={"a": ColumnValue(0), "b": ColumnValue(1)}, weights=[1.0, 2.0], scales=[0.5, 4.0])
    torch.testing.assert_close(value(x, torch.zeros(3)), x[:, 0] / 0.5 + 2 * x[:, 1] / 4.0)
    diffusion = SimpleNamespace(as_time=lambda t, batch: torch.full((batch,), t))
    from svdd_lightning.calls import CallLedger, CallMeter

    meter = CallMeter()
    with meter.attached(diffusion=SimpleNamespace(denoise=None), value=value, reward=None):
        value.evaluate(diffusion, x, 5)
    assert meter.made["value"] == 6 and value.gradient_in_state  # two networks per object, measured
    calls = CallLedger()
    calls.ask_for_scores(value, 5, 5)  # 5 asked-for states: two value-network rows each
    assert calls.as_dict()["value"] == 10
    product = MultiValue(components={"a": ColumnValue(0), "b": ColumnValue(1)}, weights=[1.0, 1.0], scales=[1.0, 1.0],
                         combine="product", alpha=2.0)
    torch.testing.assert_close(product(x, torch.zeros(3)), torch.exp((x[:, 0] + x[:, 1]) / 2.0))


def decoder_and_value(cfg):
    """What decode.py builds for a composed config: (decoder, value)."""
    from svdd_lightning.build import build_decoder, build_diffusion, build_domain, build_reward

    domain = build_domain(cfg)
    return build_decoder(cfg, diffusion=build_diffusion(cfg, domain), reward=build_reward(cfg, domain))


def test_svdd_mc_on_two_rewards_combines_the_shipped_component_values():
    from svdd_lightning.values.learned import LearnedValue
    from svdd_lightning.values.multi import MultiValue

    cfg = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "reward.weights=[1,0.5]",
                         "decoder=svdd_mc")
    decoder, value = decoder_and_value(cfg)
    assert isinstance(value, MultiValue) and all(isinstance(v, LearnedValue) for v in value.components.values())
    singles = {}
    for name in ("qed", "sa"):
        one = compose_decode("domain=molecule", f"reward={name}", "decoder=svdd_mc")
        singles[name] = decoder_and_value(one)[1]
    x = torch.randint(0, 26, (4, cfg.domain.seq_len))
    t = torch.full((4,), 40)
    expected = singles["qed"](x, t) / 0.2 + 0.5 * singles["sa"](x, t) / 0.1
    torch.testing.assert_close(value(x, t), expected)
    # The DPS decoder follows the combined value's gradient.
    dps = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "decoder=dps")
    decoder, _ = decoder_and_value(dps)
    assert decoder.settings()["guided_by"].startswith("learned SVDD-MC value")


def test_a_component_without_a_shipped_value_names_the_value_to_train():
    cfg = compose_decode("domain=rna", "reward=multi", "reward.components=[mfe,gc]", "decoder=svdd_mc")
    with pytest.raises(ConfigError, match="none for gc.*stage=value domain=rna reward=gc`, copied to "
                                          "checkpoints/rna/value_gc.ckpt"):
        decoder_and_value(cfg)


def test_a_given_value_checkpoint_is_never_replaced_and_functions_get_no_shipped_value():
    from svdd_lightning.build import multi_value_checkpoints

    shipped = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "decoder=svdd_mc")
    assert multi_value_checkpoints(shipped) == {"qed": "checkpoints/molecule/value_qed.ckpt",
                                                "sa": "checkpoints/molecule/value_sa.ckpt"}
    # The same path, given on the command line, is the user's file: used as given (here: missing, an error later).
    given = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,sa]", "decoder=svdd_mc",
                           "value.checkpoint=checkpoints/molecule/value_multi.ckpt")
    assert multi_value_checkpoints(given) is None
    # A function named like a shipped reward is another reward: its value is not looked up.
    function = compose_decode("domain=molecule", "reward=multi", "reward.components=[qed,my_scores.sa]",
                              "decoder=svdd_mc")
    with pytest.raises(ConfigError, match="none for sa.*reward=multi reward.components=\\[qed,my_scores.sa\\].*your "
                                          "function my_scores.sa"):
        multi_value_checkpoints(function)


def test_component_values_of_different_targets_are_refused():
    from svdd_lightning.values.multi import MultiValue

    parts = {"a": ColumnValue(0), "b": ColumnValue(1)}
    with pytest.raises(ValueError, match="different targets.*a: mean, b: soft"):
        MultiValue(components=parts, weights=[1, 1], scales=[1, 1], targets=["mean", "soft"])
    assert MultiValue(components=parts, weights=[1, 1], scales=[1, 1], targets=["mean", "mean"]).exact
    assert not MultiValue(components=parts, weights=[1, 1], scales=[1, 1], targets=["soft", "soft"]).exact


class MeanToken(Reward):
    """A reward without a gradient (DPS must follow the value's)."""

    is_differentiable = False

    def forward(self, x0):
        return x0.float().mean(dim=-1)


def test_dps_counts_one_value_call_per_component():
    from svdd_lightning import ops
    from svdd_lightning.decoders.dps import DPS
    from svdd_lightning.values.multi import MultiValue
    from tests.helpers import tiny_masked, tiny_value

    diffusion, batch = tiny_masked(), 3
    single = DPS(reward=MeanToken(), value=tiny_value(seed=0))
    both = DPS(reward=MeanToken(), value=MultiValue(components={"a": tiny_value(seed=0), "b": tiny_value(seed=1)},
                                                     weights=[1, 1], scales=[1, 1]))
    from tests.helpers import counted

    one = counted(single, diffusion, batch, ops.make_generators(0, range(batch))).info
    two = counted(both, diffusion, batch, ops.make_generators(0, range(batch))).info
    assert one["made"]["value"] == one["asked"]["value"] == batch * (diffusion.num_steps - 1)
    assert two["made"]["value"] == two["asked"]["value"] == 2 * batch * (diffusion.num_steps - 1)


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


def test_pareto_benchmark_reads_finished_runs_and_reports_intervals(tmp_path):
    """benchmarks/pareto.py on two finished runs (it does not run them again): table, JSON and plot."""
    from benchmarks import pareto

    rng = np.random.default_rng(0)
    for decoder, shift in (("pretrained", 0.0), ("svdd_pm", 0.3)):
        folder = tmp_path / decoder
        folder.mkdir()
        qed, sa = rng.uniform(0, 0.6, 20) + shift, rng.uniform(0, 0.6, 20) + shift
        lines = ["index,sample,reward,reward_qed,reward_sa"]
        lines += [f"{i},C,{q + s},{q},{s}" for i, (q, s) in enumerate(zip(qed, sa))]
        (folder / "samples.csv").write_text("\n".join(lines) + "\n")
        per_sample = {"asked": {"denoiser": 60.0, "value": 0.0, "reward": 40.0, "total": 100.0},
                      "made": {"denoiser": 50.0, "value": 0.0, "reward": 30.0, "total": 80.0}}
        (folder / "summary.json").write_text(json.dumps({"wall_seconds": 1.5, "wall_seconds_per_sample": 0.075,
                                                         "calls": {"per_sample": per_sample},
                                                         "num_samples": 20, "seed": 0, "reward": "qed+sa",
                                                         "naturalness": {"uniqueness": 1.0}}))
    assert pareto.main(["--decoders", "pretrained", "svdd_pm", "--num_samples", "20",
                        "--output_dir", str(tmp_path)]) == 0
    rows = {r["decoder"]: r for r in json.loads((tmp_path / "pareto.json").read_text())["rows"]}
    steered = rows["svdd_pm"]
    lo, hi = steered["qed"]["median_ci95"]
    assert lo <= steered["qed"]["median"] <= hi and steered["qed"]["median"] > rows["pretrained"]["qed"]["median"]
    assert steered["beats_pretrained_median_on_both"] > rows["pretrained"]["beats_pretrained_median_on_both"]
    assert steered["calls_per_sample"] == 100.0 and steered["made_calls_per_sample"] == 80.0
    assert "| svdd_pm |" in (tmp_path / "pareto.md").read_text() and (tmp_path / "pareto.png").stat().st_size > 1000
    with pytest.raises(SystemExit, match="other settings"):  # a finished run of 20 samples is not one of 64
        pareto.main(["--decoders", "pretrained", "--num_samples", "64", "--output_dir", str(tmp_path)])


def test_the_merged_files_of_several_rewards_are_checked_per_component():
    """reward=[net_charge,instability]: net_charge's ph and sign are not InstabilityReward's options, and that is
    no error; an option given on the command line goes to the one component that has it."""
    from svdd_lightning.build import build_domain, build_reward
    from svdd_lightning.options import check_config

    cfg = compose_decode("domain=antibody", "reward=[net_charge,instability]", "reward.sign=-1")
    check_config(cfg, entry="decode")
    reward = build_reward(cfg, build_domain(cfg))
    assert list(reward.components) == ["net_charge", "instability"]
    assert reward.components["net_charge"].inner.fn(["KKKKRR"])[0] < 0  # sign=-1 reached net_charge
    check_config(compose_decode("domain=image", "reward=[digit,compressibility]"), entry="decode")
    both = compose_decode("domain=image", "reward=[digit,oracle]", "reward.checkpoint=x.ckpt")
    with pytest.raises(ConfigError, match="reward.checkpoint=x.ckpt is an option of several.*digit, oracle"):
        build_reward(both, build_domain(both))
    none = compose_decode("domain=molecule", "reward=[qed,sa]", "+reward.depth=3")
    with pytest.raises(ConfigError, match="reward.depth=3 is an option of none of the chosen rewards"):
        build_reward(none, build_domain(none))


def test_a_reward_file_that_does_not_name_itself_is_refused():
    from omegaconf import open_dict

    from svdd_lightning.build import build_domain, build_reward

    cfg = compose_decode("domain=molecule", "reward=qed")
    with open_dict(cfg.reward):
        del cfg.reward.components
    with pytest.raises(ConfigError, match="does not name itself.*components: \\{my_score: my_score\\}"):
        build_reward(cfg, build_domain(cfg))


def test_a_users_reward_keeps_its_own_alpha_unless_it_is_set():
    from svdd_lightning.build import build_domain, build_reward

    target = "reward._target_=tests.user_reward.length_to_the_alpha"
    for given, expected in (([], 0.3), (["reward.alpha=2"], 2.0)):
        cfg = compose_decode("domain=molecule", "reward=function", target, *given)
        reward = build_reward(cfg, build_domain(cfg))
        assert getattr(reward.inner.fn, "keywords", {}).get("alpha", 0.3) == expected
