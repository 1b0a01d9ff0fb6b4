"""Pure tensor helpers shared by diffusions and decoders.

Randomness is drawn per sample: every sample owns a ``torch.Generator`` seeded from
(seed, global sample index). A sample's draws therefore do not depend on which other
samples share its batch or its process, so 1 CPU and N GPUs give the same samples.
Generators live on the CPU and draws are moved to the target device afterwards, which also
makes samples identical across device types. Each generator fills its row of one CPU tensor in place (the numbers
``torch.rand(shape, generator=g)`` would draw); bound for CUDA, that tensor is page-locked and copied without
blocking, since a copy from pageable memory makes PyTorch synchronise the stream at every draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

Generators = Sequence[torch.Generator]


def sample_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed for sample ``index`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> 1)


def make_generators(seed: int, indices: Sequence[int] | Tensor) -> list[torch.Generator]:
    """One CPU generator per global sample index."""
    if isinstance(indices, Tensor):
        indices = indices.tolist()
    return [torch.Generator().manual_seed(sample_seed(seed, i)) for i in indices]


def repeat_generators(generators: Generators, times: int) -> list[torch.Generator]:
    """Each generator repeated ``times`` in a row, for particles flattened as (B * N).

    Particle n of sample b draws from sample b's generator after particles 0..n-1, so the
    draws stay a function of the sample index alone.
    """
    return [g for g in generators for _ in range(times)]


def host_buffer(shape: Sequence[int], device: torch.device | str) -> Tensor:
    """An uninitialised float CPU tensor for draws bound for ``device``: page-locked when that is a CUDA device, so
    that ``to_device`` copies it without a stream synchronisation."""
    return torch.empty(tuple(shape), pin_memory=torch.device(device).type == "cuda")


def to_device(host: Tensor, device: torch.device | str) -> Tensor:
    """``host`` on ``device``, copied asynchronously (a page-locked source is safe to free: PyTorch's host allocator
    waits for the copy before reusing it; a CPU ``device`` returns ``host`` itself)."""
    return host.to(device, non_blocking=True)


def rand(generators: Generators, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Uniform [0, 1) draws of shape (B, *shape), row b from generator b (``torch.rand(shape, generator=g)``'s
    numbers, which is ``empty(shape).uniform_(0, 1, generator=g)``)."""
    out = host_buffer((len(generators), *shape), device)
    for row, g in zip(out, generators):
        row.uniform_(0.0, 1.0, generator=g)
    return to_device(out, device)


def randn(generators: Generators, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Standard normal draws of shape (B, *shape), row b from generator b (``torch.randn(shape, generator=g)``'s
    numbers: ``empty(shape).normal_(0, 1, generator=g)``)."""
    out = host_buffer((len(generators), *shape), device)
    for row, g in zip(out, generators):
        row.normal_(0.0, 1.0, generator=g)
    return to_device(out, device)


def gumbel(generators: Generators, shape: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
    """Standard Gumbel draws of shape (B, *shape)."""
    return gumbel_of(rand(generators, shape, device))


def gumbel_of(u: Tensor) -> Tensor:
    """Standard Gumbel numbers from uniform [0, 1) draws ``u`` (so a caller may transform only those it uses)."""
    u = u.clamp(min=1e-20, max=1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def gather_candidates(candidates: Tensor, index: Tensor) -> Tensor:
    """Pick candidate ``index[b]`` of each row of ``candidates`` (B, M, *event) -> (B, *event); with ``index``
    (B, A), A kept per row (beams) -> (B * A, *event), row b * A + a."""
    kept = index if index.dim() == 2 else index[:, None]
    view = kept.view(*kept.shape, *([1] * (candidates.dim() - 2))).expand(-1, -1, *candidates.shape[2:])
    out = candidates.gather(1, view)
    return out.squeeze(1) if index.dim() == 1 else out.flatten(0, 1)


def select_candidates(values: Tensor, alpha: float, generators: Generators) -> Tensor:
    """Index of the kept candidate per row of ``values`` (B, M).

    alpha == 0 keeps the argmax; alpha > 0 samples Categorical(softmax(values / alpha)) with the
    Gumbel-max trick. With a single candidate nothing is drawn, so M = 1 consumes no randomness
    and reduces exactly to the pre-trained sampler.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if values.shape[1] == 1:
        return torch.zeros(values.shape[0], dtype=torch.long, device=values.device)
    if alpha == 0:
        return values.argmax(dim=1)
    noise = gumbel(generators, values.shape[1:], values.device)
    return (values / alpha + noise).argmax(dim=1)


def log_normalize(log_weights: Tensor, dim: int = -1) -> Tensor:
    """Log-weights normalised to sum to one along ``dim`` (log space throughout)."""
    return log_weights - torch.logsumexp(log_weights, dim=dim, keepdim=True)


def effective_sample_size(log_weights: Tensor, dim: int = -1) -> Tensor:
    """ESS = 1 / sum w_i^2 of the normalised weights, computed from log-weights."""
    logw = log_normalize(log_weights, dim)
    return torch.exp(-torch.logsumexp(2 * logw, dim=dim))


# -- populations (SMC, SVDD-R) -------------------------------------------------------------
# Decoders that let the samples of a batch interact treat the batch as one population. The
# seed DataModule makes batch k hold the global indices [k * B, (k + 1) * B) on any number of
# devices, so a population is a function of the seed and its indices alone.

def population_generator(generators: Generators) -> torch.Generator:
    """One generator for population-level draws (resampling), derived from the first member's
    seed without consuming any of the members' own draws."""
    if len(generators) == 0:
        raise ValueError("a population needs at least one member")
    mixed = np.random.SeedSequence([int(generators[0].initial_seed()), len(generators), 0x5EED])
    return torch.Generator().manual_seed(int(mixed.generate_state(1, np.uint64)[0] >> 1))


def multinomial_resample(log_weights: Tensor, num: int, generator: torch.Generator) -> Tensor:
    """``num`` ancestor indices drawn i.i.d. from the normalised weights (log space in)."""
    probs = log_normalize(log_weights.detach().double().cpu()).exp()
    return torch.multinomial(probs, num, replacement=True, generator=generator).to(log_weights.device)


def systematic_resample(log_weights: Tensor, num: int, generator: torch.Generator) -> Tensor:
    """``num`` ancestor indices by systematic resampling: one uniform offset, evenly spaced
    points through the cumulative weights (lower variance than multinomial)."""
    probs = log_normalize(log_weights.detach().double().cpu()).exp()
    cumulative = probs.cumsum(0)
    cumulative[-1] = 1.0  # guard against rounding: every point lands on a particle
    u = (torch.rand((), generator=generator, dtype=torch.float64) + torch.arange(num, dtype=torch.float64)) / num
    return torch.searchsorted(cumulative, u, right=True).clamp(max=probs.numel() - 1).to(log_weights.device)


RESAMPLING_SCHEMES = {"systematic": systematic_resample, "multinomial": multinomial_resample}


def resample_within_groups(resample, log_w: Tensor, groups: Tensor | None, slots: Tensor | None, count: int,
                           generator: torch.Generator) -> Tensor:
    """``count`` ancestor indices into a population with log-weights ``log_w``, drawn by
    ``resample(log_w, n, generator)``. With ``groups`` (the population's group of each member, e.g. the seed its
    design started from) and ``slots`` (the group of each of the ``count`` output slots), each slot draws only
    from members of its own group, so states never move between groups. Without groups: one draw over all."""
    if groups is None:
        return resample(log_w, count, generator)
    out = torch.empty(count, dtype=torch.long, device=log_w.device)
    for g in slots.unique(sorted=True).tolist():
        where = (slots == g).nonzero()[:, 0]
        members = (groups == g).nonzero()[:, 0]
        out[where] = members[resample(log_w[members], where.numel(), generator)]
    return out
