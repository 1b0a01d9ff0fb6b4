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


# General masked diffusion (issue 14): one schedule, the mask id anywhere, sampleable tokens --------------------
@pytest.mark.parametrize("num_steps", [1, 7, 128, 200])
def test_loglinear_reveal_probability_is_one_over_t(num_steps):
    """The schedule-derived reveal probability (alpha_s - alpha_t) / (1 - alpha_t) against the closed form 1 / t of
    the log-linear schedule; bit-exact where t / T is exact in binary (T = 128, the shipped models)."""
    d = tiny_masked(num_steps=num_steps)
    t = torch.arange(1, num_steps + 1)
    closed = 1.0 / t.float()
    derived = d.reveal_probability(t)
    if num_steps == 128:
        assert torch.equal(derived, closed)
    torch.testing.assert_close(derived, closed, rtol=1e-6, atol=0)
    torch.testing.assert_close(d.mask_probability(t), t.float() / num_steps, rtol=1e-6, atol=0)


def test_cosine_schedule_reveals_by_its_own_formula():
    import math

    from svdd_lightning.diffusion.schedules import CosineSchedule

    torch.manual_seed(0)
    net = SequenceDenoiser(vocab_size=4, channels=8, num_layers=2, time_dim=8)
    d = MaskedDiffusion(network=net, vocab_size=4, seq_len=12, num_steps=10, schedule=CosineSchedule())
    alpha = [math.cos(math.pi / 2 * k / 10) for k in range(11)]
    for t in (1, 5, 10):
        expected = (alpha[t - 1] - alpha[t]) / (1 - alpha[t])
        assert d.reveal_probability(torch.tensor([t])).item() == pytest.approx(expected, rel=1e-6)
    assert d.reveal_probability(torch.tensor([1])).item() == pytest.approx(1.0)  # everything left is revealed


class ShiftedVocabulary(torch.nn.Module):
    """Our tiny network seen through a masked LM's vocabulary: specials at 0..2, the mask at 3, the 4 tokens at
    4..7 in reversed order (model id 7 is our token 0); logits over all 8 ids."""

    ids = [7, 6, 5, 4]
    mask = 3

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, t):
        ours = torch.full_like(x, 4)
        for k, i in enumerate(self.ids):
            ours = torch.where(x == i, k, ours)
        logits = self.inner(ours, t)[..., :4]
        out = torch.full((*x.shape, 8), 5.0)  # specials and mask: high logits that must never be sampled
        out[..., self.ids] = logits
        return out


def test_a_model_with_its_own_mask_id_and_tokens_samples_what_ours_does():
    """The same network behind another vocabulary layout (mask id 3, sampleable ids 7, 6, 5, 4): every state,
    mapped back with to_data, equals our layout's, and specials are never sampled."""
    ours = tiny_masked()
    theirs = MaskedDiffusion(network=ShiftedVocabulary(ours.network), vocab_size=4, seq_len=12, num_steps=6,
                             mask_index=3, token_ids=ShiftedVocabulary.ids)
    assert not theirs.states_are_data and ours.states_are_data
    gens_a, gens_b = ops.make_generators(3, range(5)), ops.make_generators(3, range(5))
    x, y = ours.prior(5, gens_a), theirs.prior(5, gens_b)
    assert (y == 3).all()
    with torch.no_grad():
        for t in ours.timesteps():
            x = ours.step(x, t, gens_a).prev_sample
            y = theirs.step(y, t, gens_b).prev_sample
            assert torch.equal(theirs.to_data(y), x)
            assert torch.equal(theirs.from_data(x), y)
    assert set(y.unique().tolist()) <= set(ShiftedVocabulary.ids)
    x0 = torch.randint(0, 4, (3, 12))
    torch.testing.assert_close(theirs.log_likelihood(x0, ops.make_generators(1, range(3)), 4),
                               ours.log_likelihood(x0, ops.make_generators(1, range(3)), 4))


def test_bad_token_layouts_are_refused():
    net = SequenceDenoiser(vocab_size=4, channels=8, num_layers=2, time_dim=8)
    with pytest.raises(ValueError, match="token_ids must be 4 distinct"):
        MaskedDiffusion(network=net, vocab_size=4, seq_len=8, mask_index=5, token_ids=[1, 2, 3, 5])
    with pytest.raises(ValueError, match="time_input"):
        MaskedDiffusion(network=net, vocab_size=4, seq_len=8, time_input="index")
