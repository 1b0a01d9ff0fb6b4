import math

import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.gaussian import GaussianDiffusion
from svdd_lightning.networks.image import ImageClassifier
from tests.contracts import DiffusionContract
from tests.helpers import TEST_THREADS, ddpm_alphas_cumprod, tiny_unet_denoiser

EVENT = (1, 8, 8)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions gain nothing from intra-op threads, and when the cores are shared the
    threads' spin-waiting makes every test here ~10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(previous)


def tiny_gaussian(beta_schedule: str = "cosine", **kwargs) -> GaussianDiffusion:
    """A tiny UNet2DModel on a 50-step DDPMScheduler table, decoded in 5 steps."""
    options = dict(num_steps=5, alphas_cumprod=ddpm_alphas_cumprod(beta_schedule), timestep_input="index")
    options.update(kwargs)
    return GaussianDiffusion(network=tiny_unet_denoiser(), event_shape=EVENT, **options)


def cosine_alpha_bar(k: int, big_k: int, s: float = 0.008) -> float:
    """Nichol & Dhariwal's abar_k, written out independently of the implementation."""

    def f(u: float) -> float:
        return math.cos((u / big_k + s) / (1 + s) * math.pi / 2) ** 2

    return f(k) / f(0)


class Oracle(torch.nn.Module):
    """An epsilon network that returns a preset tensor and records the times it was given."""

    def __init__(self, eps: torch.Tensor) -> None:
        super().__init__()
        self.eps = eps
        self.dummy = torch.nn.Parameter(torch.zeros(()))
        self.seen_t: list[torch.Tensor] = []

    def forward(self, x, t):
        self.seen_t.append(t.detach().clone())
        return self.eps + 0 * self.dummy


class PointMass(torch.nn.Module):
    """The exact epsilon-predictor for data that is always ``center``: Tweedie gives x0-hat = center."""

    def __init__(self, center: torch.Tensor, diffusion_ref: list) -> None:
        super().__init__()
        self.center = center
        self.ref = diffusion_ref
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        d = self.ref[0]
        k = (t * d.train_steps).round().long()
        a = d.alphas_cumprod[k].double().view(-1, 1, 1, 1)
        return ((x.double() - a.sqrt() * self.center) / (1 - a).sqrt()).float() + 0 * self.dummy


def point_mass_diffusion(center: torch.Tensor) -> GaussianDiffusion:
    ref: list = []
    d = GaussianDiffusion(network=PointMass(center, ref), event_shape=EVENT, num_steps=5,
                          alphas_cumprod=ddpm_alphas_cumprod())
    ref.append(d)
    return d


class TestGaussianDiffusionContract(DiffusionContract):
    @pytest.fixture
    def diffusion(self):
        return tiny_gaussian()


class TestGaussianDiffusionDeterministicContract(DiffusionContract):
    """eta = 0 must still satisfy the contract except that seeds only enter through the prior."""

    @pytest.fixture
    def diffusion(self):
        return tiny_gaussian(eta=0.0, beta_schedule="linear", clip_sample=1.0)


# (a) eta = 0 -------------------------------------------------------------------------------
def test_eta_zero_candidates_identical_and_step_deterministic():
    d = tiny_gaussian(eta=0.0)
    x = d.prior(3, ops.make_generators(0, range(3)))
    with torch.no_grad():
        cands = d.propose(x, 3, 6, ops.make_generators(0, range(3)))
        assert torch.equal(cands, cands[:, :1].expand_as(cands))
        finals = []
        for seed in (0, 1):
            gens = ops.make_generators(seed, range(3))
            y = x.clone()
            for t in d.timesteps():
                y = d.step(y, t, gens).prev_sample
            finals.append(y)
    assert torch.equal(finals[0], finals[1])


def test_eta_one_with_exact_model_samples_the_ddpm_posterior():
    """For point-mass data the exact model's DDIM step with eta = 1 must draw from
    q(x_{t-1} | x_t, x_0 = center), the DDPM posterior between tau_{t-1} and tau_t."""
    center = torch.full(EVENT, 0.3, dtype=torch.float64)
    d = point_mass_diffusion(center)
    x = torch.randn(1, *EVENT)
    with torch.no_grad():
        cands = d.propose(x, 3, 4000, ops.make_generators(0, [0])).double()
    a, a_prev = cosine_alpha_bar(30, 50), cosine_alpha_bar(20, 50)
    beta = 1 - a / a_prev
    mean = math.sqrt(a_prev) * beta / (1 - a) * 0.3 + math.sqrt(1 - beta) * (1 - a_prev) / (1 - a) * x.double()
    std = math.sqrt((1 - a_prev) / (1 - a) * beta)
    torch.testing.assert_close(cands.mean(dim=1), mean, atol=4 * std / math.sqrt(4000), rtol=0)
    assert abs(cands.std(dim=1).mean().item() - std) < 0.02 * std


def test_last_step_returns_x0_hat():
    d = tiny_gaussian(eta=1.0)
    x = torch.randn(2, *EVENT)
    with torch.no_grad():
        x0_hat = d.denoise(x, 1)
        cands = d.propose(x, 1, 3, ops.make_generators(0, range(2)))
    torch.testing.assert_close(cands, x0_hat.unsqueeze(1).expand_as(cands))


# (b) forward marginal --------------------------------------------------------------------
@pytest.mark.parametrize("per_sample", [True, False])
def test_add_noise_marginal_matches_cosine_schedule(per_sample):
    d = tiny_gaussian()
    n, t = 4000, 2
    x0 = torch.full((n, *EVENT), 0.7)
    gens = ops.make_generators(3, range(n)) if per_sample else None
    torch.manual_seed(3)
    xt = d.add_noise(x0, t, gens)
    a = cosine_alpha_bar(t * 50 // 5, 50)
    assert abs(xt.mean().item() - math.sqrt(a) * 0.7) < 0.01
    assert abs(xt.var().item() - (1 - a)) < 0.02 * (1 - a)


def test_add_noise_t0_is_identity_and_last_step_is_almost_pure_noise():
    d = tiny_gaussian()
    x0 = torch.full((2000, *EVENT), 3.0)
    gens = ops.make_generators(0, range(2000))
    assert torch.equal(d.add_noise(x0, 0, gens), x0)
    xt = d.add_noise(x0, d.num_steps, gens)
    assert abs(xt.mean().item()) < 0.02 and abs(xt.var().item() - 1) < 0.02


# (c) Tweedie consistency -----------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("t", [1, 3, 5])
def test_oracle_epsilon_recovers_x0(schedule, t):
    x0 = torch.rand(4, *EVENT) * 2 - 1
    eps = ops.randn(ops.make_generators(9, range(4)), EVENT)
    oracle = Oracle(eps)
    d = GaussianDiffusion(network=oracle, event_shape=EVENT, num_steps=5,
                          alphas_cumprod=ddpm_alphas_cumprod(schedule))
    xt = d.add_noise(x0, t, ops.make_generators(9, range(4)))
    x0_hat = d.denoise(xt, t)
    # abar is ~1e-6 at the last cosine step, so x0-hat's error is float rounding / sqrt(abar).
    atol = 5e-3 if (schedule == "cosine" and t == 5) else 1e-4
    torch.testing.assert_close(x0_hat, x0, atol=atol, rtol=0)
    torch.testing.assert_close(d.x0_estimate(xt, t, x0_hat), x0_hat)
    torch.testing.assert_close(oracle.seen_t[-1], torch.full((4,), t * 10 / 50))


def test_oracle_ddim_eta0_reaches_data_from_its_own_noise():
    """With the true epsilon, deterministic DDIM maps x_t on the data's noising path to x0."""
    x0 = torch.rand(2, *EVENT) * 2 - 1
    eps = torch.randn(2, *EVENT)
    d = GaussianDiffusion(
        network=Oracle(eps), event_shape=EVENT, num_steps=5, alphas_cumprod=ddpm_alphas_cumprod("linear"), eta=0.0
    )
    x = d.q_sample(x0, torch.full((2,), 50), eps)
    with torch.no_grad():
        for t in d.timesteps():
            x = d.step(x, t, ops.make_generators(0, range(2))).prev_sample
    torch.testing.assert_close(x, x0, atol=1e-4, rtol=0)


def test_clip_sample_bounds_x0_hat_and_propose_stays_on_ddim_path():
    d = tiny_gaussian(clip_sample=0.5, eta=0.0)
    x = torch.randn(3, *EVENT) * 3
    with torch.no_grad():
        x0_hat = d.denoise(x, 4)
        assert x0_hat.abs().max() <= 0.5
        x_prev = d.propose(x, 4, 1, ops.make_generators(0, range(3)), denoised=x0_hat).squeeze(1)
        # eps-hat is re-derived from the clipped x0-hat, so x_t = sqrt(a) x0_hat + sqrt(1-a) eps_hat
        # and x_{t-1} lies on the same line through x0-hat.
        a, a_prev = d.alphas_cumprod[40].item(), d.alphas_cumprod[30].item()
        eps = (x - math.sqrt(a) * x0_hat) / math.sqrt(1 - a)
        torch.testing.assert_close(x_prev, math.sqrt(a_prev) * x0_hat + math.sqrt(1 - a_prev) * eps, atol=1e-5, rtol=0)


def test_propose_with_denoised_makes_no_network_call():
    d = tiny_gaussian()
    calls = [0]
    d.network.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    x = torch.randn(2, *EVENT)
    with torch.no_grad():
        den = d.denoise(x, 2)
        d.propose(x, 2, 4, ops.make_generators(0, range(2)), denoised=den)
    assert calls[0] == 1


# log-likelihood ----------------------------------------------------------------------------
def test_log_likelihood_higher_on_fitted_data():
    center = torch.full(EVENT, 0.3, dtype=torch.float64)
    d = point_mass_diffusion(center)
    fitted = center.float().expand(4, *EVENT).clone()
    gens = ops.make_generators(0, range(4))
    with torch.no_grad():
        ll_fit = d.log_likelihood(fitted, gens, num_estimates=8)
        ll_off = d.log_likelihood(fitted + 0.5, gens, num_estimates=8)
    assert torch.isfinite(ll_fit).all() and torch.isfinite(ll_off).all()
    assert (ll_fit > ll_off).all()


@pytest.mark.parametrize("delta", [0.0, 0.05])
def test_log_likelihood_matches_closed_form(delta):
    """The point-mass model's x0-hat is off by ``delta`` in every pixel at every step, so each
    diffusion KL is 0.5 (SNR_{k-1} - SNR_k) D delta^2 and their sum telescopes to
    0.5 D delta^2 (SNR_1 - SNR_K). With num_estimates = K - 1 every k in 2..K is visited once,
    so the estimate is exact."""
    center = torch.full(EVENT, 0.3, dtype=torch.float64)
    d = point_mass_diffusion(center)
    x0 = (center + delta).float().expand(2, *EVENT).clone()
    with torch.no_grad():
        ll = d.log_likelihood(x0, ops.make_generators(0, range(2)), num_estimates=49)
    dims = 64
    a_1 = cosine_alpha_bar(1, 50)
    a_last = cosine_alpha_bar(49, 50) * (1 - 0.999)  # the last beta is capped at 0.999
    beta_1 = 1 - a_1
    snr_1, snr_last = a_1 / (1 - a_1), a_last / (1 - a_last)
    prior_kl = 0.5 * dims * (a_last * (0.3 + delta) ** 2 - a_last - math.log1p(-a_last))
    recon = -0.5 * dims * (math.log(2 * math.pi * beta_1) + delta**2 / beta_1)
    diffusion_kl = 0.5 * dims * delta**2 * (snr_1 - snr_last)
    expected = recon - diffusion_kl - prior_kl
    torch.testing.assert_close(ll, torch.full((2,), expected), atol=2e-2, rtol=1e-4)


def test_log_likelihood_is_reproducible_per_sample():
    d = tiny_gaussian()
    x0 = torch.rand(3, *EVENT)
    with torch.no_grad():
        ll = d.log_likelihood(x0, ops.make_generators(4, range(3)), num_estimates=3)
        ll_last = d.log_likelihood(x0[2:], ops.make_generators(4, [2]), num_estimates=3)
    torch.testing.assert_close(ll[2:], ll_last, atol=1e-3, rtol=1e-5)


# (d) training ------------------------------------------------------------------------------
def test_training_lowers_loss_and_raises_likelihood():
    torch.manual_seed(0)
    patterns = torch.zeros(4, *EVENT) - 1
    patterns[0, 0, :, 2:4] = 1
    patterns[1, 0, 2:4, :] = 1
    patterns[2, 0, 2:6, 2:6] = 1
    patterns[3, 0].fill_diagonal_(1)
    d = tiny_gaussian()
    net = d.network
    data = patterns.repeat(8, 1, 1, 1)

    def eval_loss() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(d.training_loss(data).item() for _ in range(8)) / 8

    gens = ops.make_generators(0, range(4))
    with torch.no_grad():
        ll_before = d.log_likelihood(patterns, gens, num_estimates=8).mean().item()
    before = eval_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    torch.manual_seed(1)
    for _ in range(300):
        opt.zero_grad()
        d.training_loss(data).backward()
        opt.step()
    after = eval_loss()
    with torch.no_grad():
        ll_after = d.log_likelihood(patterns, ops.make_generators(0, range(4)), num_estimates=8).mean().item()
    assert after < 0.6 * before
    assert ll_after > ll_before


# (e) validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(eta=-0.1), "eta"),
        (dict(eta=1.5), "eta"),
        (dict(num_steps=0), "num_steps"),
        (dict(num_steps=60), "num_steps"),
        (dict(clip_sample=0.0), "clip_sample"),
    ],
)
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        tiny_gaussian(**kwargs)
    bad = next(iter(kwargs.values()))
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


@pytest.mark.parametrize("table", [[], [0.5, 0.9], [1.0, 0.0], [0.9, float("nan")]])
def test_a_schedule_table_that_is_not_a_schedulers_raises(table):
    with pytest.raises(ValueError, match="alphas_cumprod must be a non-empty, non-increasing table"):
        tiny_gaussian(alphas_cumprod=table, num_steps=1)


def test_invalid_event_shape_and_candidates_raise():
    with pytest.raises(ValueError, match="event_shape"):
        GaussianDiffusion(network=tiny_unet_denoiser(), event_shape=(), alphas_cumprod=ddpm_alphas_cumprod())
    d = tiny_gaussian()
    with pytest.raises(ValueError, match="num_candidates"):
        d.propose(torch.zeros(1, *EVENT), 2, 0, ops.make_generators(0, [0]))


def test_checkpoint_loads_with_other_decoding_settings():
    trained = tiny_gaussian(num_steps=5)
    other = tiny_gaussian(num_steps=10)
    other.load_state_dict(trained.state_dict())
    assert other.timesteps()[0] == 10


# networks ----------------------------------------------------------------------------------
def test_image_classifier_shape():
    assert ImageClassifier()(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_unet_denoiser_output_is_independent_of_batch_mates():
    """A sample depends only on its own seed: no batch statistics in the denoiser (GroupNorm, not BatchNorm)."""
    net = tiny_unet_denoiser().eval()
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([3, 100, 500, 999])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t)[1:2], net(x[1:2], t[1:2]), atol=1e-5, rtol=1e-5)
