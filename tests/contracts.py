"""Contract tests written once and inherited by every Diffusion, Decoder and Reward.

A concrete test class subclasses one of these and provides a fixture (``diffusion``,
``decoder_setup`` or ``reward``/``reward_inputs``); pytest collects the inherited tests.
"""

from __future__ import annotations

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.base import Diffusion, StepOutput


class DiffusionContract:
    """Every Diffusion: shapes, one network call per propose, determinism under a seed."""

    batch_size = 3

    @pytest.fixture
    def diffusion(self) -> Diffusion:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def count_network_calls(self, diffusion: Diffusion) -> list[int]:
        calls = [0]
        diffusion.network.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        return calls

    def test_prior_shape(self, diffusion):
        x = diffusion.prior(self.batch_size, ops.make_generators(0, range(self.batch_size)))
        assert x.shape == (self.batch_size, *diffusion.event_shape)

    def test_timesteps_run_from_T_to_1(self, diffusion):
        steps = diffusion.timesteps()
        assert steps[0] == diffusion.num_steps and steps[-1] == 1 and len(steps) == diffusion.num_steps

    def test_add_noise_shape_and_t0_identity(self, diffusion):
        gens = ops.make_generators(0, range(self.batch_size))
        x0 = self.clean_batch(diffusion)
        assert torch.equal(diffusion.add_noise(x0, 0, gens), x0)
        xt = diffusion.add_noise(x0, diffusion.num_steps // 2, gens)
        assert xt.shape == x0.shape and xt.dtype == x0.dtype

    def clean_batch(self, diffusion: Diffusion) -> torch.Tensor:
        gens = ops.make_generators(1, range(self.batch_size))
        x = diffusion.prior(self.batch_size, gens)
        with torch.no_grad():
            for t in diffusion.timesteps():
                x = diffusion.step(x, t, gens).prev_sample
        return x

    def test_propose_one_network_call_and_shape(self, diffusion):
        gens = ops.make_generators(0, range(self.batch_size))
        x = diffusion.prior(self.batch_size, gens)
        calls = self.count_network_calls(diffusion)
        with torch.no_grad():
            cands = diffusion.propose(x, diffusion.num_steps, 5, gens)
        assert calls[0] == 1
        assert cands.shape == (self.batch_size, 5, *diffusion.event_shape)

    def test_step_equals_propose_with_one_candidate(self, diffusion):
        x = diffusion.prior(self.batch_size, ops.make_generators(0, range(self.batch_size)))
        t = diffusion.num_steps
        with torch.no_grad():
            out = diffusion.step(x, t, ops.make_generators(5, range(self.batch_size)))
            prop = diffusion.propose(x, t, 1, ops.make_generators(5, range(self.batch_size)))
        assert isinstance(out, StepOutput)
        torch.testing.assert_close(out.prev_sample, prop.squeeze(1))

    def test_sampling_is_a_function_of_sample_index(self, diffusion):
        """Sample i is the same whether it is drawn alone or inside a batch."""
        gens_all = ops.make_generators(7, range(self.batch_size))
        gens_one = ops.make_generators(7, [self.batch_size - 1])
        with torch.no_grad():
            xa = diffusion.prior(self.batch_size, gens_all)
            x1 = diffusion.prior(1, gens_one)
            for t in diffusion.timesteps():
                xa = diffusion.step(xa, t, gens_all).prev_sample
                x1 = diffusion.step(x1, t, gens_one).prev_sample
        torch.testing.assert_close(xa[-1:], x1, atol=1e-4, rtol=1e-4)

    def test_different_seeds_differ(self, diffusion):
        outs = []
        for seed in (0, 1):
            gens = ops.make_generators(seed, range(self.batch_size))
            x = diffusion.prior(self.batch_size, gens)
            with torch.no_grad():
                for t in diffusion.timesteps():
                    x = diffusion.step(x, t, gens).prev_sample
            outs.append(x)
        assert not torch.equal(outs[0], outs[1])

    def test_denoise_is_differentiable(self, diffusion):
        x0 = self.clean_batch(diffusion)
        xt = diffusion.add_noise(x0, diffusion.num_steps // 2, ops.make_generators(0, range(self.batch_size)))
        out = diffusion.denoise(xt, diffusion.num_steps // 2)
        assert out.requires_grad

    def test_log_likelihood_is_finite(self, diffusion):
        x0 = self.clean_batch(diffusion)
        with torch.no_grad():
            ll = diffusion.log_likelihood(x0, ops.make_generators(0, range(self.batch_size)), num_estimates=4)
        assert ll.shape == (self.batch_size,) and torch.isfinite(ll).all()

    def test_training_loss_backpropagates(self, diffusion):
        x0 = self.clean_batch(diffusion)
        loss = diffusion.training_loss(x0)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in diffusion.network.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)


class RewardContract:
    """Every Reward: (B,) output on x0's device, finite, class attributes present."""

    @pytest.fixture
    def reward(self):  # pragma: no cover
        raise NotImplementedError

    @pytest.fixture
    def reward_inputs(self) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def test_attributes(self, reward):
        assert isinstance(reward.name, str) and reward.name
        assert isinstance(reward.higher_is_better, bool)
        assert isinstance(reward.is_differentiable, bool)

    def test_shape_device_finite(self, reward, reward_inputs):
        out = reward(reward_inputs)
        assert out.shape == (reward_inputs.shape[0],)
        assert out.device == reward_inputs.device
        assert torch.isfinite(out).all()

    def test_deterministic(self, reward, reward_inputs):
        torch.testing.assert_close(reward(reward_inputs), reward(reward_inputs))
