"""The target distribution itself, by exact enumeration.

A masked diffusion model small enough to enumerate (L = 3 positions, V = 2 tokens, mask id 2,
T = 3 steps) with a fixed random network whose logits at each position depend on the other
positions and on time, so p_pre is not a product distribution. From the model's own transition
(``diffusion.denoise`` plus the reveal rule: a masked token is revealed with probability 1 / t,
drawn from the denoiser's probabilities, and at t = 1 every remaining mask becomes the argmax)
dynamic programming over the 3^3 states gives, exactly:

- p_pre(x0) over the 8 clean sequences,
- p_alpha(x0) ∝ p_pre(x0) exp(r(x0) / alpha) for a reward table r,
- the soft value v_t(x) = alpha log E_pre[exp(r(x0) / alpha) | x_t = x] for every state and t
  (v_0 = r), looked up by ``ExactSoftValue``,
- the exact output distribution of SVDD with M candidates for *any* value table (finite-M
  selection probabilities by a one-dimensional integral, see ``svdd_transition``).

Then pre-trained sampling must sample p_pre, and SMC and SVDD guided by the exact soft value
must sample p_alpha, each measured by the total-variation distance (TV) of 20,000 samples to
the exact distribution.

The bar, TV < 0.03. With n = 20,000 i.i.d. draws over K = 8 outcomes the empirical TV is
0.5 sum_k |p_hat_k - p_k| with E|p_hat_k - p_k| ~ sqrt(2 p_k (1 - p_k) / (pi n)): E[TV] = 0.0073
for p_pre and 0.0058 for p_alpha here (0.0075 at most, for uniform p; ``expected_sampling_tv``),
with a standard deviation of about 0.002. The decoders' biases are of the same order: SVDD with
M = 64 candidates has TV 0.0071 to p_alpha, computed exactly (0.031 at M = 16, 0.0017 at
M = 256: ~0.45 / M), and SMC's self-normalised bias is O(1/N) with N = 1,000 particles per
population. Measured over seeds 0-5: pre-trained 0.004-0.010, SVDD (M = 64) 0.007-0.013, SMC
0.003-0.008. The wrong settings, with the same 20,000 samples: SVDD selecting with the soft
value for 4 alpha 0.068-0.073 (exact law: 0.069), SVDD with the plain E[r | x_t] 0.093-0.095
(exact: 0.093), SMC at 4 alpha 0.32-0.33 (exact: 0.325), SMC's unweighted particles without
the final resampling 0.45. So 0.03 sits a factor ~2.3 above the worst correct sampler and
~2.3 below the mildest wrong one; it is > 8 standard deviations of sampling error above the
expected TV of every correct decoder, so they do not fail by chance.

Why the wrong values are only ~0.07-0.09 away: the last step (t = 1) is the deterministic
argmax, so v_1(x) = r(argmax completion of x) for every value that has v_0 = r (the soft value
at any alpha, and E[r | x_t]); the wrong values differ from the soft value only at t = 2, i.e.
only SVDD's selection at the first step (t = 3 -> 2) is wrong.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats
from torch import Tensor, nn

from svdd_lightning import ops
from svdd_lightning.decoders.pretrained import PretrainedSampler
from svdd_lightning.decoders.smc import SMC
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.decoders.svdd_smc import NestedSMC
from svdd_lightning.decoders.tree import TreeSearch
from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.rewards.base import Reward
from svdd_lightning.values.base import ValueFunction

L, V, T = 3, 2, 3
MASK = V
ALPHA = 0.5
BAR = 0.03
POPULATION = 1000
NUM_POPULATIONS = 20
NUM_SAMPLES = POPULATION * NUM_POPULATIONS
SVDD_M = 64
# r over the 8 clean sequences, indexed by the binary code 4 x[0] + 2 x[1] + x[2]: distinct values
# over 2.1 units, so exp(r / alpha) reweights p_pre strongly (ratios up to e^4.2).
REWARD_TABLE = (0.0, 1.8, 1.5, 1.2, 2.1, 0.9, 0.3, 0.6)

STATES = torch.tensor(list(itertools.product(range(V + 1), repeat=L)), dtype=torch.long)  # (27, L)
CLEAN = (STATES != MASK).all(dim=1)  # (27,)
CLEAN_STATES = STATES[CLEAN]  # (8, L), in binary-code order (product order with the mask id last)


def state_index(x: Tensor) -> Tensor:
    """Row of STATES for each (B, L) state with tokens in [0, V]."""
    return (x * (V + 1) ** torch.arange(L - 1, -1, -1, device=x.device)).sum(dim=-1)


def clean_code(x: Tensor) -> Tensor:
    """Index 0..7 of each clean (B, L) sequence: its binary code."""
    return (x * V ** torch.arange(L - 1, -1, -1, device=x.device)).sum(dim=-1)


# -- the model ---------------------------------------------------------------------------------
class EntangledNet(nn.Module):
    """network(x_t (B, L) in [0, V], t_frac (B,)) -> logits (B, L, V + 1): an embedding of all
    three tokens, flattened, plus the time fraction, through a small MLP. Weights are fixed by
    their own generator, so the model does not depend on the global RNG."""

    def __init__(self, seed: int = 1, hidden: int = 16, dim: int = 4, scale: float = 2.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(V + 1, dim, generator=g))
        self.w1 = nn.Parameter(torch.randn(L * dim + 1, hidden, generator=g) * scale / math.sqrt(L * dim + 1))
        self.b1 = nn.Parameter(torch.randn(hidden, generator=g) * 0.5)
        self.w2 = nn.Parameter(torch.randn(hidden, L * (V + 1), generator=g) * scale / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.randn(L * (V + 1), generator=g) * 0.5)

    def forward(self, x_t: Tensor, t_frac: Tensor) -> Tensor:
        h = torch.cat([self.embed[x_t].flatten(1), t_frac.float().view(-1, 1)], dim=1)
        h = torch.tanh(h @ self.w1 + self.b1)
        return (h @ self.w2 + self.b2).view(-1, L, V + 1)


class TableReward(Reward):
    name = "table"
    is_differentiable = False

    def __init__(self, table=REWARD_TABLE) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))

    def forward(self, x0: Tensor) -> Tensor:
        return self.table[clean_code(x0)]


class ExactSoftValue(ValueFunction):
    """v(x_t, t) looked up in a (T + 1, 27) table (NaN where undefined: masked states at t = 0)."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.float())

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        values = self.table[t.long(), state_index(x_t)]
        assert torch.isfinite(values).all(), "value asked for a state the exact table does not define"
        return values


# -- exact computation -------------------------------------------------------------------------
def transition_matrices(diffusion: MaskedDiffusion) -> dict[int, Tensor]:
    """P[t][i, j] = p_pre(x_{t-1} = STATES[j] | x_t = STATES[i]) (float64), from the model's
    denoiser and the reveal rule: positions move independently given x_t; an unmasked token
    stays; a masked one stays masked with probability 1 - 1/t or becomes v with probability
    probs[v] / t; at t = 1 it becomes the argmax."""
    matrices = {}
    with torch.no_grad():
        for t in range(1, T + 1):
            probs = diffusion.denoise(STATES, t).double()  # (27, L, V)
            probs = probs / probs.sum(-1, keepdim=True)  # float32 softmax sums to 1 +- 1e-7; sampling normalises
            if t == 1:
                revealed = F.one_hot(probs.argmax(-1), V + 1).double()
            else:
                revealed = torch.cat([probs / t, torch.full_like(probs[..., :1], 1.0 - 1.0 / t)], dim=-1)
            kept = F.one_hot(STATES, V + 1).double()
            per_position = torch.where((STATES == MASK)[..., None], revealed, kept)  # (27, L, V + 1): p(y_l | x)
            # P[i, j] = prod_l per_position[i, l, STATES[j, l]]
            matrices[t] = torch.stack([per_position[:, pos, STATES[:, pos]] for pos in range(L)]).prod(dim=0)
            assert close(matrices[t].sum(dim=1), torch.ones(len(STATES), dtype=torch.float64))
    return matrices


def pretrained_marginals(matrices: dict[int, Tensor]) -> dict[int, Tensor]:
    """p_pre(x_t) over the 27 states for t = T..0 (x_T is all-mask)."""
    dist = torch.zeros(len(STATES), dtype=torch.float64)
    dist[state_index(torch.full((1, L), MASK))] = 1.0
    marginals = {T: dist}
    for t in range(T, 0, -1):
        dist = dist @ matrices[t]
        marginals[t - 1] = dist
    return marginals


def soft_value_table(matrices: dict[int, Tensor], reward: Tensor, alpha: float) -> Tensor:
    """(T + 1, 27): v_t(x) = alpha log E_pre[exp(r(x0)/alpha) | x_t = x], v_0 = r on clean
    states and NaN on masked ones (no chain reaches a mask at t = 0)."""
    h = torch.zeros(len(STATES), dtype=torch.float64)
    h[CLEAN] = torch.exp(reward / alpha)
    table = torch.full((T + 1, len(STATES)), torch.nan, dtype=torch.float64)
    table[0, CLEAN] = reward
    for t in range(1, T + 1):
        h = matrices[t] @ h  # the mask rows of h at t = 0 are 0, and P_1 never reaches them
        table[t] = alpha * torch.log(h)
    return table


def posterior_mean_table(matrices: dict[int, Tensor], reward: Tensor) -> Tensor:
    """(T + 1, 27): E_pre[r(x0) | x_t = x] (the plain posterior expectation, not the soft value)."""
    e = torch.zeros(len(STATES), dtype=torch.float64)
    e[CLEAN] = reward
    table = torch.full((T + 1, len(STATES)), torch.nan, dtype=torch.float64)
    table[0, CLEAN] = reward
    for t in range(1, T + 1):
        e = matrices[t] @ e
        table[t] = e
    return table


def svdd_transition(p: Tensor, w: Tensor, m: int | None) -> Tensor:
    """The exact law of SVDD's kept candidate: M i.i.d. draws Y_1..Y_M from ``p`` (over the
    support where p > 0), one kept with probability w(Y_k) / sum_j w(Y_j). By symmetry
        q(y) = M p(y) w(y) E[1 / (w(y) + S)],  S = sum of M - 1 i.i.d. w(Y),
    and E[1 / (a + S)] = int_0^inf e^{-a s} phi(s)^{M-1} ds with phi(s) = E[e^{-s w(Y)}]."""
    if m is None:  # M -> infinity: the soft-optimal policy p w / E[w]
        return p * w / (p * w).sum()
    support = p > 0
    q = torch.zeros_like(p)
    if int(support.sum()) == 1 or m == 1:
        return p.clone()
    ps, ws = p[support].numpy(), w[support].numpy()
    ws = ws / ws.max()  # selection depends on ratios only

    def integrand(s: float) -> np.ndarray:
        phi = float(np.dot(ps, np.exp(-s * ws)))
        return np.exp(-s * ws) * phi ** (m - 1)

    integral, _ = integrate.quad_vec(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-10)
    q[support] = torch.from_numpy(m * ps * ws * integral)
    return q


def svdd_output_distribution(matrices: dict[int, Tensor], value_table: Tensor, alpha: float, m: int | None) -> Tensor:
    """The exact distribution over the 8 clean sequences of SVDD (M candidates, selection
    softmax(v / alpha), ``value_table`` as in soft_value_table), by propagating the chain."""
    dist = torch.zeros(len(STATES), dtype=torch.float64)
    dist[state_index(torch.full((1, L), MASK))] = 1.0
    for t in range(T, 0, -1):
        w_all = torch.exp((value_table[t - 1] - torch.nan_to_num(value_table[t - 1], nan=0.0).max()) / alpha)
        w_all = torch.nan_to_num(w_all, nan=0.0)
        nxt = torch.zeros_like(dist)
        for i in torch.nonzero(dist > 0).flatten().tolist():
            nxt += dist[i] * svdd_transition(matrices[t][i], w_all, m)
        dist = nxt
    assert abs(float(dist.sum()) - 1.0) < 1e-8 and float(dist[~CLEAN].sum()) == 0.0
    return dist[CLEAN]


def tilt(p: Tensor, reward: Tensor, alpha: float) -> Tensor:
    w = p * torch.exp((reward - reward.max()) / alpha)
    return w / w.sum()


def close(a: Tensor, b: Tensor, tol: float = 1e-6) -> bool:
    """allclose in float64 (torch.testing.assert_close would import torch.distributed: ~2 s)."""
    return bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


def tv(p: Tensor, q: Tensor) -> float:
    return 0.5 * float((p.double() - q.double()).abs().sum())


def expected_sampling_tv(p: Tensor, n: int) -> float:
    """E[TV(p_hat, p)] for n i.i.d. draws, normal approximation per outcome."""
    p = p.double()
    return float(0.5 * torch.sqrt(2 * p * (1 - p) / (math.pi * n)).sum())


def histogram(samples: Tensor, weights: Tensor | None = None) -> Tensor:
    assert (samples != MASK).all(), "a decoder returned masked tokens"
    codes = clean_code(samples)
    if weights is None:
        weights = torch.ones(len(codes), dtype=torch.float64)
    counts = torch.zeros(V**L, dtype=torch.float64).index_add_(0, codes, weights.double())
    return counts / counts.sum()


# -- fixtures ----------------------------------------------------------------------------------
class Exact:
    """The model and every exact quantity the tests compare against."""

    def __init__(self) -> None:
        self.diffusion = MaskedDiffusion(network=EntangledNet(), vocab_size=V, seq_len=L, num_steps=T).eval()
        self.reward = TableReward()
        self.r = self.reward.table.double()
        self.matrices = transition_matrices(self.diffusion)
        self.marginals = pretrained_marginals(self.matrices)
        self.p_pre = self.marginals[0][CLEAN]
        self.p_alpha = tilt(self.p_pre, self.r, ALPHA)
        self.soft_values = soft_value_table(self.matrices, self.r, ALPHA)

    def value(self, table: Tensor | None = None) -> ExactSoftValue:
        return ExactSoftValue(self.soft_values if table is None else table)


@functools.lru_cache(maxsize=None)
def exact_model() -> Exact:
    return Exact()


@pytest.fixture
def exact() -> Exact:
    return exact_model()


@functools.lru_cache(maxsize=None)
def _generator_states(seed: int, k: int) -> tuple[Tensor, ...]:
    return tuple(g.get_state() for g in ops.make_generators(seed, range(k * POPULATION, (k + 1) * POPULATION)))


def population_generators(seed: int, k: int) -> list[torch.Generator]:
    """Fresh generators equal to ``ops.make_generators(seed, range(k * N, (k + 1) * N))``
    (cached states: seeding 20,000 generators costs about a second each time)."""
    return [torch.Generator().set_state(state) for state in _generator_states(seed, k)]


def draw(decoder, diffusion, seed: int = 0) -> tuple[Tensor, Tensor]:
    """NUM_SAMPLES samples in NUM_POPULATIONS calls of POPULATION (population k holds the global
    indices k * N .. (k + 1) * N - 1). Returns two histograms over the 8 clean sequences: the
    samples counted equally, and weighted by their normalised output weights (per call)."""
    plain, weighted = [], []
    with torch.no_grad():
        for k in range(NUM_POPULATIONS):
            out = decoder(diffusion, POPULATION, population_generators(seed, k))
            assert out.samples.shape == (POPULATION, L)
            plain.append(histogram(out.samples))
            weighted.append(histogram(out.samples, ops.log_normalize(out.log_weights.double()).exp()))
    return torch.stack(plain).mean(dim=0), torch.stack(weighted).mean(dim=0)


# -- the exact model itself --------------------------------------------------------------------
def test_model_is_entangled_and_not_degenerate(exact):
    """p_pre is far from the product of its marginals, has full support, and the reward tilt
    moves it a lot: otherwise the tests below could pass with a per-position sampler, or
    without any guidance."""
    p = exact.p_pre.view(V, V, V)
    product = torch.einsum("i,j,k->ijk", p.sum((1, 2)), p.sum((0, 2)), p.sum((0, 1)))
    assert tv(p.flatten(), product.flatten()) > 0.05
    assert float(exact.p_pre.min()) > 0.01
    assert tv(exact.p_pre, exact.p_alpha) > 0.2
    # Time enters the network: the denoiser differs between t = 3 and t = 2 on the all-mask state.
    prior = torch.full((1, L), MASK)
    with torch.no_grad():
        assert not torch.allclose(exact.diffusion.denoise(prior, 3), exact.diffusion.denoise(prior, 2), atol=1e-3)


def test_exact_soft_value_is_consistent(exact):
    """v_0 = r; v_T(all-mask) = alpha log E_pre[exp(r/alpha)]; and the soft-optimal policy
    p_pre(y | x) exp(v_{t-1}(y)/alpha) / exp(v_t(x)/alpha) is a normalised kernel that carries
    the all-mask state to p_alpha."""
    value = exact.value()
    assert close(value(CLEAN_STATES, torch.zeros(8, dtype=torch.long)), exact.reward(CLEAN_STATES))
    top = exact.soft_values[T, state_index(torch.full((1, L), MASK))]
    assert close(top, ALPHA * torch.log((exact.p_pre * torch.exp(exact.r / ALPHA)).sum()).view(1))
    dist = exact.marginals[T].clone()
    for t in range(T, 0, -1):
        h_prev = torch.nan_to_num(torch.exp(exact.soft_values[t - 1] / ALPHA), nan=0.0)
        kernel = exact.matrices[t] * h_prev / torch.exp(exact.soft_values[t] / ALPHA)[:, None]
        assert close(kernel.sum(1), torch.ones(len(STATES), dtype=torch.float64))
        dist = dist @ kernel
    assert close(dist[CLEAN], exact.p_alpha)


def test_svdd_finite_m_bias_is_small(exact):
    """The exact law of SVDD with M candidates tends to p_alpha as M grows (bias ~ 1/M), and at
    the M used below its bias is a small part of the bar. With M = 1 it is p_pre."""
    biases = {m: tv(svdd_output_distribution(exact.matrices, exact.soft_values, ALPHA, m), exact.p_alpha)
              for m in (1, 4, 16, SVDD_M)}
    assert biases[1] == pytest.approx(tv(exact.p_pre, exact.p_alpha), abs=1e-9)
    assert biases[1] > biases[4] > biases[16] > biases[SVDD_M]
    assert biases[SVDD_M] < BAR / 3


# -- samplers against the exact distributions ---------------------------------------------------
def test_pretrained_sampling_matches_p_pre(exact):
    hist, _ = draw(PretrainedSampler(reward=exact.reward), exact.diffusion)
    distance = tv(hist, exact.p_pre)
    assert distance < BAR, (distance, expected_sampling_tv(exact.p_pre, NUM_SAMPLES))


def test_svdd_with_the_exact_soft_value_samples_p_alpha(exact):
    decoder = SVDD(reward=exact.reward, value=exact.value(), num_candidates=SVDD_M, alpha=ALPHA)
    hist, _ = draw(decoder, exact.diffusion)
    distance = tv(hist, exact.p_alpha)
    law = svdd_output_distribution(exact.matrices, exact.soft_values, ALPHA, SVDD_M)
    assert distance < BAR, (distance, tv(hist, law), expected_sampling_tv(exact.p_alpha, NUM_SAMPLES))


@functools.lru_cache(maxsize=None)
def smc_histograms(ess_threshold: float, final_resampling: bool) -> tuple[Tensor, Tensor]:
    e = exact_model()
    decoder = SMC(reward=e.reward, value=e.value(), alpha=ALPHA, ess_threshold=ess_threshold,
                  final_resampling=final_resampling)
    return draw(decoder, e.diffusion)


# ess_threshold 0.5 (the default) resamples once along the way here (at t = 2), 1.0 after every
# step that moves a weight (t = 3 and t = 2), so resampled particles move on with the model.
@pytest.mark.parametrize("ess_threshold", [0.5, 1.0])
def test_smc_samples_p_alpha(exact, ess_threshold):
    """SMC ends with a resampling by its last normalised weights, so its samples, counted
    equally, are samples of p_alpha."""
    plain, weighted = smc_histograms(ess_threshold, True)
    assert close(plain, weighted)  # equal output weights
    distance = tv(plain, exact.p_alpha)
    assert distance < BAR, distance


def test_smc_weighted_particles_target_p_alpha(exact):
    """Without the final resampling (and without any resampling), the particles weighted by their
    normalised output log-weights estimate p_alpha, while the same particles counted equally are
    pre-trained samples: the test above would catch a missing final resampling."""
    plain, weighted = smc_histograms(0.0, False)
    assert tv(weighted, exact.p_alpha) < BAR, tv(weighted, exact.p_alpha)
    assert tv(plain, exact.p_pre) < BAR
    assert tv(plain, exact.p_alpha) > BAR


# -- a wrong weight fails the bar ----------------------------------------------------------------
@pytest.mark.parametrize("wrong", ["soft_value_at_4_alpha", "posterior_mean"])
def test_svdd_with_a_wrong_value_fails_the_bar(exact, wrong):
    """SVDD selecting with exp(v'/alpha) for a value v' other than the soft value at alpha does
    not sample p_alpha (v' = the soft value for 4 alpha, or the plain E[r | x_t]); the exact law
    of that decoder is far from p_alpha and so are its samples: the bar detects a wrong weight."""
    if wrong == "soft_value_at_4_alpha":
        table = soft_value_table(exact.matrices, exact.r, 4 * ALPHA)
    else:
        table = posterior_mean_table(exact.matrices, exact.r)
    law = svdd_output_distribution(exact.matrices, table, ALPHA, SVDD_M)
    assert tv(law, exact.p_alpha) > 2 * BAR
    decoder = SVDD(reward=exact.reward, value=exact.value(table), num_candidates=SVDD_M, alpha=ALPHA)
    hist, _ = draw(decoder, exact.diffusion)
    assert tv(hist, law) < BAR  # it samples its own (wrong) law ...
    assert tv(hist, exact.p_alpha) > BAR, tv(hist, exact.p_alpha)  # ... which the bar tells apart from p_alpha


def test_smc_with_a_wrong_alpha_fails_the_bar(exact):
    """SMC's target is fixed by its final weight (r - v_T)/alpha whatever the intermediate values
    (v_0 = r for any alpha), so the wrong weight that changes SMC's target is a wrong alpha:
    SMC at 4 alpha (value and weights) targets p_{4 alpha}, which the bar tells apart from p_alpha."""
    p_wrong = tilt(exact.p_pre, exact.r, 4 * ALPHA)
    assert tv(p_wrong, exact.p_alpha) > 2 * BAR
    decoder = SMC(reward=exact.reward, value=exact.value(soft_value_table(exact.matrices, exact.r, 4 * ALPHA)),
                  alpha=4 * ALPHA)
    hist, _ = draw(decoder, exact.diffusion)
    assert tv(hist, p_wrong) < BAR
    assert tv(hist, exact.p_alpha) > BAR, tv(hist, exact.p_alpha)


# -- nested SMC: SVDD made exact ----------------------------------------------------------------
class KeptCandidateWeight(NestedSMC):
    """A deliberately wrong nested weight: the kept candidate's exp((v - v_t) / alpha), SMC's weight for a move of
    the pre-trained model, put on SVDD's already tilted proposal (the tilt counts twice)."""

    def incremental_log_weight(self, step: Tensor, keep: Tensor) -> Tensor:
        return step.gather(1, keep[:, None]).squeeze(1)


@pytest.mark.parametrize("m", [2, 4])
def test_svdd_smc_samples_p_alpha_where_svdd_alone_is_biased(exact, m):
    """At M = 2 and 4, SVDD alone with the exact soft value misses the bar (its exact law); the same proposal with
    the nested importance weight, resampled on low ESS and at the end, samples p_alpha."""
    svdd_law = svdd_output_distribution(exact.matrices, exact.soft_values, ALPHA, m)
    assert tv(svdd_law, exact.p_alpha) > BAR
    hist, _ = draw(NestedSMC(reward=exact.reward, value=exact.value(), num_candidates=m, alpha=ALPHA), exact.diffusion)
    distance = tv(hist, exact.p_alpha)
    assert distance < BAR, (distance, tv(svdd_law, exact.p_alpha), expected_sampling_tv(exact.p_alpha, NUM_SAMPLES))


def test_svdd_smc_with_a_wrong_weight_fails_the_bar(exact):
    hist, _ = draw(KeptCandidateWeight(reward=exact.reward, value=exact.value(), num_candidates=4, alpha=ALPHA),
                   exact.diffusion)
    assert tv(hist, exact.p_alpha) > BAR, tv(hist, exact.p_alpha)


# -- diffusion tree sampling -----------------------------------------------------------------------
# A tree per sample costs a Python loop per iteration, so these draw 4,000 samples (4 populations of 1,000): the
# expected sampling TV is then 0.013 (sd about 0.004), still well under the bar.
TREE_POPULATIONS = 4


class MeanBackup(TreeSearch):
    """A deliberately wrong backup in sampling mode: the children's mean value instead of the soft-Bellman one."""

    def backup(self, child_values: Tensor, present: Tensor) -> Tensor:
        count = present.sum(1).clamp(min=1).double()
        return torch.where(present, child_values, 0.0).sum(1) / count


@functools.lru_cache(maxsize=None)
def tree_histogram(kind: str, m: int, exponent: float) -> Tensor:
    e = exact_model()
    cls = MeanBackup if kind == "mean" else TreeSearch
    decoder = cls(reward=e.reward, num_candidates=m, alpha=ALPHA, widening_exponent=exponent)
    plain = []
    with torch.no_grad():
        for k in range(TREE_POPULATIONS):
            plain.append(histogram(decoder(e.diffusion, POPULATION, population_generators(0, k)).samples))
    return torch.stack(plain).mean(dim=0)


@pytest.mark.slow  # about 15 s alone on this machine: run with make test-slow
def test_dts_with_full_widening_samples_p_alpha(exact):
    """With widening_exponent = 1 every visit of the root may add a child, so the root's children are independent
    pre-trained rollouts and the Boltzmann descent is self-normalised importance sampling over them: p_alpha.
    The budget is in denoiser calls (M x T per tree) and a root rollout costs T = 3, so M = 64 buys 64 rollouts:
    measured TV 0.022 at M = 16, 0.027 at 32 and 0.018 at 64 on 4,000 samples (sampling alone: about 0.013)."""
    distance = tv(tree_histogram("soft", 64, 1.0), exact.p_alpha)
    assert distance < BAR, (distance, expected_sampling_tv(exact.p_alpha, TREE_POPULATIONS * POPULATION))


@pytest.mark.slow  # about 25 s alone on this machine: run with make test-slow
def test_dts_approaches_p_alpha_as_the_tree_grows_and_a_wrong_backup_does_not(exact):
    """With square-root widening (the default) the tree allocates rollouts by value, and its Boltzmann descent
    tends to p_alpha only slowly: measured TV 0.44 at M = 2 (6 denoiser calls per tree), 0.11 at 32 and 0.07 at 128,
    still above the bar at budgets a test can afford (the nodes that look worse get fewer children, and a mean over
    fewer children is the noisier one). Here: it falls with the budget, and the mean backup in place of the soft one
    stays further away at the same budget (measured 0.17 against 0.11)."""
    small, large = (tv(tree_histogram("soft", m, 0.5), exact.p_alpha) for m in (2, 32))
    wrong = tv(tree_histogram("mean", 32, 0.5), exact.p_alpha)
    assert large < small - 0.05, (small, large)
    assert wrong > large + 0.02 and wrong > BAR, (wrong, large)


# -- softmax selection -------------------------------------------------------------------------
SELECTION_VALUES = torch.tensor([0.0, 1.0, 0.5, -0.3, 0.8])
SELECTION_ALPHA = 0.7
SELECTION_ROWS = 10_000


@pytest.fixture(scope="module")
def selection_counts() -> np.ndarray:
    values = SELECTION_VALUES.repeat(SELECTION_ROWS, 1)
    picks = ops.select_candidates(values, SELECTION_ALPHA, ops.make_generators(0, range(SELECTION_ROWS)))
    return torch.bincount(picks, minlength=len(SELECTION_VALUES)).numpy()


def test_select_candidates_follows_softmax(selection_counts):
    expected = torch.softmax(SELECTION_VALUES.double() / SELECTION_ALPHA, 0).numpy() * SELECTION_ROWS
    assert stats.chisquare(selection_counts, expected).pvalue > 1e-3


@pytest.mark.parametrize("wrong_alpha", [0.5 * SELECTION_ALPHA, 1.2 * SELECTION_ALPHA, 2 * SELECTION_ALPHA])
def test_select_candidates_chi_square_detects_a_wrong_alpha(selection_counts, wrong_alpha):
    expected = torch.softmax(SELECTION_VALUES.double() / wrong_alpha, 0).numpy() * SELECTION_ROWS
    assert stats.chisquare(selection_counts, expected).pvalue < 1e-6
