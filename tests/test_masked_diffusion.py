import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.networks.sequence import SequenceDenoiser
from tests.contracts import DiffusionContract


def tiny_masked(seq_len: int = 12, num_steps: int = 6) -> MaskedDiffusion:
    torch.manual_seed(0)
    net = SequenceDenoiser(vocab_size=4, channels=8, num_layers=2, time_dim=8)
    return MaskedDiffusion(network=net, vocab_size=4, seq_len=seq_len, num_steps=num_steps)


class TestMaskedDiffusionContract(DiffusionContract):
    @pytest.fixture
    def diffusion(self):
        return tiny_masked()


def test_full_reverse_chain_unmasks_everything():
    d = tiny_masked()
    gens = ops.make_generators(0, range(4))
    x = d.prior(4, gens)
    assert (x == d.mask_index).all()
    with torch.no_grad():
        for t in d.timesteps():
            x = d.step(x, t, gens).prev_sample
    assert (x < d.mask_index).all()


def test_unmasked_tokens_never_change():
    d = tiny_masked()
    gens = ops.make_generators(0, range(4))
    x0 = torch.randint(0, 4, (4, 12))
    xt = d.add_noise(x0, 3, gens)
    with torch.no_grad():
        cands = d.propose(xt, 3, 7, gens)
    keep = (xt != d.mask_index).unsqueeze(1).expand_as(cands)
    assert torch.equal(cands[keep], xt.unsqueeze(1).expand_as(cands)[keep])


def test_subs_parameterisation_copies_unmasked_positions():
    d = tiny_masked()
    x = torch.tensor([[0, 1, 4, 3, 4, 2, 0, 1, 2, 3, 4, 4]])
    with torch.no_grad():
        probs = d.denoise(x, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 12))
    unmasked = x[0] != 4
    assert torch.equal(probs[0, unmasked].argmax(-1), x[0, unmasked])
    assert torch.all(probs[0, unmasked].max(-1).values == 1.0)


def test_mask_rate_follows_linear_schedule():
    d = tiny_masked(seq_len=2000, num_steps=10)
    x0 = torch.zeros(2, 2000, dtype=torch.long)
    gens = ops.make_generators(0, range(2))
    for t in (2, 5, 8):
        rate = (d.add_noise(x0, t, gens) == d.mask_index).float().mean().item()
        assert abs(rate - t / 10) < 0.03


def test_uniform_model_log_likelihood_is_length_times_log_vocab():
    """A network that predicts uniform tokens has ELBO = -L log V exactly in expectation."""

    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, tokens, t):
            return torch.zeros(*tokens.shape, 4) + 0 * self.dummy

    d = MaskedDiffusion(network=Uniform(), vocab_size=4, seq_len=50, num_steps=20)
    x0 = torch.randint(0, 4, (64, 50))
    ll = d.log_likelihood(x0, ops.make_generators(0, range(64)), num_estimates=20)
    expected = -50 * torch.log(torch.tensor(4.0))
    assert abs(ll.mean().item() - expected.item()) < 0.05 * abs(expected.item())
