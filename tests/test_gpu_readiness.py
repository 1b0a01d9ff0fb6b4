"""GPU readiness, checked without a GPU (issue 23, part 5).

The per-sample generators live on the CPU (ops.py), so every step moves their draws to the decode device. On CUDA a
copy from ordinary (pageable) memory synchronises the stream, and a tensor read back on the host (``.item()``,
``bool(tensor)``, ``.tolist()``) waits for all queued work: either stalls the GPU once per step. These tests check,
on the CPU, that the draws are the numbers they always were, that they are staged in pinned memory and copied
without blocking when bound for CUDA, and that a decoding step reads nothing back on the host by itself.
"""

from __future__ import annotations

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.values.base import score_states
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import gc_reward, tiny_masked

SHAPES = [(), (1,), (3,), (10, 20), (17,), (5, 16, 3), (2, 7, 4)]


@pytest.mark.parametrize("shape", SHAPES)
def test_draws_are_the_row_by_row_numbers(shape):
    """ops.rand / ops.randn / ops.gumbel draw exactly what each generator's own torch.rand / torch.randn draws (the
    reproducibility promise: filling rows in place must not change a number), and advance each generator alike."""
    gens, ref = ops.make_generators(3, range(5)), ops.make_generators(3, range(5))
    assert torch.equal(ops.rand(gens, shape), torch.stack([torch.rand(shape, generator=g) for g in ref]))
    assert torch.equal(ops.randn(gens, shape), torch.stack([torch.randn(shape, generator=g) for g in ref]))
    assert torch.equal(ops.gumbel(gens, shape), ops.gumbel_of(torch.stack([torch.rand(shape, generator=g)
                                                                          for g in ref])))
    assert [g.get_state().tolist() for g in gens] == [g.get_state().tolist() for g in ref]


def test_draws_land_on_the_requested_device():
    """Draws are made on the CPU and moved: a device without data (meta) receives a tensor of the full shape."""
    gens = ops.make_generators(0, range(3))
    for draw in (ops.rand(gens, (4, 2), "meta"), ops.randn(gens, (4, 2), torch.device("meta")),
                 ops.rand([], (4, 2), "meta")):
        assert draw.device.type == "meta"
    assert ops.rand(gens, (4, 2), "meta").shape == (3, 4, 2)


def test_draws_for_cuda_are_pinned_and_copied_without_blocking(monkeypatch):
    """Bound for CUDA, the draws are written into page-locked memory and copied with ``non_blocking=True``: a copy
    from pageable memory (what ``torch.stack(rows).to(device)`` did) makes PyTorch synchronise the stream, once per
    draw and step. No CUDA here, so the allocation and the copy are recorded and run on the CPU."""
    empties, copies = [], []
    real_empty, real_to = torch.empty, torch.Tensor.to

    def empty(*args, pin_memory=False, **kwargs):
        empties.append(pin_memory)
        return real_empty(*args, **kwargs)

    def to(self, *args, **kwargs):
        device = args[0] if args else kwargs.get("device")
        if device is not None and torch.device(device).type == "cuda":
            copies.append(kwargs.get("non_blocking", False))
            return self  # stands in for the device copy
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch.Tensor, "to", to)
    gens, ref = ops.make_generators(1, range(4)), ops.make_generators(1, range(4))
    for draw, fill in ((ops.rand, torch.rand), (ops.randn, torch.randn)):
        empties.clear(), copies.clear()
        out = draw(gens, (3, 5), torch.device("cuda"))
        assert empties == [True] and copies == [True]
        assert torch.equal(out, torch.stack([fill((3, 5), generator=g) for g in ref]))
    empties.clear()
    ops.rand(gens, (3, 5), "cpu")
    assert empties == [False]  # pinning needs CUDA; a CPU decode never asks for it


class HostReads:
    """Counts host reads of tensor values made from Python (each one a device sync on a GPU)."""

    METHODS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")

    def __init__(self, monkeypatch) -> None:
        self.calls: list[str] = []
        for name in self.METHODS:
            inner = getattr(torch.Tensor, name)

            def counted(self_, *args, _name=name, _inner=inner, **kwargs):
                self.calls.append(_name)
                return _inner(self_, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


TRACE = ["tolist", "tolist"]  # SVDD's and beam search's trace (value_mean, value_std), once, after the loop


@pytest.mark.parametrize("kind, alpha, expected", [
    ("svdd_pm", 0.0, TRACE), ("svdd_pm", 1.0, TRACE), ("svdd_mc", 1.0, TRACE), ("svdd_r", 0.0, TRACE),
    ("beam", 1.0, TRACE), ("pretrained", 0.0, []), ("best_of_n", 0.0, []), ("dps", 0.0, []),
    # SMC decides whether to resample from the effective sample size: one read per step but the last, by design.
    ("smc", 0.0, ["__bool__"] * 4 + ["tolist"]),
])
def test_decodes_read_nothing_back_per_step(monkeypatch, kind, alpha, expected):
    """A whole decode (denoise, propose, score, select, gather, every step) reads tensor values on the host from
    Python only where listed: the posterior-mean value's ``bool((t == 0).all())`` was one device sync per value
    call. (Syncs inside torch, such as ``torch.unique`` for deduplication or ``nonzero`` for the revealed
    positions, are not counted here: they are what a data-dependent shape costs.)"""
    from tests.test_decoders import make_decoder

    diffusion = tiny_masked(seq_len=8, num_steps=5)
    decoder = make_decoder(kind, diffusion, alpha=alpha)
    expected_out = decoder(diffusion, 4, ops.make_generators(0, range(4)))
    reads = HostReads(monkeypatch)
    out = decoder(diffusion, 4, ops.make_generators(0, range(4)))
    assert reads.calls == expected
    assert torch.equal(out.samples, expected_out.samples) and torch.equal(out.rewards, expected_out.rewards)


def test_gaussian_svdd_reads_nothing_back_per_step(monkeypatch):
    """The same for SVDD-PM on a Gaussian model (normal draws every step, eta = 1)."""
    from tests.test_decoders_gaussian import Brightness, tiny_gaussian

    diffusion, reward = tiny_gaussian(), Brightness()
    decoder = SVDD(reward=reward, value=PosteriorMeanValue(reward=reward, diffusion=diffusion), num_candidates=3,
                   alpha=1.0)
    expected_out = decoder(diffusion, 3, ops.make_generators(0, range(3)))
    reads = HostReads(monkeypatch)
    out = decoder(diffusion, 3, ops.make_generators(0, range(3)))
    assert reads.calls == TRACE
    assert torch.equal(out.samples, expected_out.samples)


def test_posterior_mean_value_of_an_int_step_equals_that_of_a_time_tensor():
    """The int step is decided on the host; the numbers are those of the same step given as a (B,) tensor, and
    t = 0 is still the reward itself."""
    diffusion = tiny_masked(seq_len=8, num_steps=5)
    reward = gc_reward()
    value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    x = diffusion.propose(diffusion.prior(6, ops.make_generators(0, range(6))), 5, 1,
                          ops.make_generators(0, range(6)))[:, 0]
    for t in (4, 2, 1):
        a, b = value.evaluate(diffusion, x, t), value.evaluate(diffusion, x, torch.full((6,), t))
        assert torch.equal(a.values, b.values) and torch.equal(a.denoised, b.denoised) and a.denoised.shape[0] == 6
    clean = torch.randint(0, 4, (6, 8))
    zero = value.evaluate(diffusion, clean, 0)
    assert zero.denoised is None and torch.equal(zero.values, reward(clean))
    assert torch.equal(score_states(value, reward, diffusion, clean, 0).values, reward(clean))
