"""The soft-value target of SVDD-MC (modules/value.py): alpha log E[exp(r / alpha) | x_t]."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from svdd_lightning.modules.value import ValueRegressionModule
from svdd_lightning.values.learned import LearnedValue


class Constant(nn.Module):
    """One learnable number for every state: the regression's optimum is a statistic of the rewards."""

    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return self.s.expand(x.shape[0])


def fit(target: str, rewards: torch.Tensor, alpha: float | None = None) -> float:
    value = LearnedValue(network=Constant(), num_steps=8)
    module = ValueRegressionModule(value=value, domain="dna", reward_name="toy", target=target, soft_alpha=alpha)
    module.log = lambda *args, **kwargs: None  # no trainer here
    if target == "soft":  # what on_fit_start sets from the training rollouts
        value.set_target_scale(rewards.max().item(), alpha)
    else:
        value.set_target_scale(rewards.mean().item(), rewards.std().item())
    optimiser = torch.optim.Adam(value.network.parameters(), lr=0.05)
    batch = {"x_t": torch.zeros(len(rewards), 4, dtype=torch.long), "t": torch.full((len(rewards),), 3),
             "reward": rewards}
    for _ in range(2000):
        optimiser.zero_grad()
        module.training_step(batch, 0).backward()
        optimiser.step()
    return float(value(batch["x_t"][:1], batch["t"][:1]))


def test_soft_target_fits_alpha_log_mean_exp_and_mean_target_the_mean():
    rewards = torch.tensor([0.1, 0.2, 0.9, 0.4])
    alpha = 0.2
    soft = alpha * math.log(torch.exp(rewards / alpha).mean().item())
    assert fit("soft", rewards, alpha) == pytest.approx(soft, abs=2e-3)
    assert fit("mean", rewards) == pytest.approx(rewards.mean().item(), abs=2e-3)
    # The two differ here (soft 0.52 vs mean 0.40): the test tells them apart.
    assert soft - rewards.mean().item() > 0.1


def test_soft_target_needs_a_positive_alpha():
    value = LearnedValue(network=Constant(), num_steps=8)
    with pytest.raises(ValueError, match="soft_alpha"):
        ValueRegressionModule(value=value, domain="dna", reward_name="toy", target="soft")
    with pytest.raises(ValueError, match="target"):
        ValueRegressionModule(value=value, domain="dna", reward_name="toy", target="max")


def test_soft_alpha_defaults_per_reward_and_names_the_fix_where_there_is_none():
    from hydra import compose, initialize_config_dir

    from svdd_lightning.errors import ConfigError
    from tests.test_configs import CONFIGS
    from svdd_lightning.tasks.train import soft_alpha

    def train_config(*overrides):
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose("train", overrides=["stage=value", *overrides])

    assert soft_alpha(train_config("domain=rna", "reward=mfe"), "mfe") == 3.5  # the domain's reward scale
    # Several rewards summed are in units of each component's scale: alpha 1.
    assert soft_alpha(train_config("domain=rna", "reward=multi", "reward.components=[mfe,gc]"), "multi") == 1.0
    no_scale = train_config("domain=rna", "reward=function", "reward._target_=tests.user_reward.gc_fraction")
    with pytest.raises(ConfigError, match="soft_alpha=A.*target=mean"):
        soft_alpha(no_scale, "function")
    assert soft_alpha(train_config("domain=rna", "reward=function", "reward._target_=tests.user_reward.gc_fraction",
                                   "value_training.target=mean"), "function") is None
