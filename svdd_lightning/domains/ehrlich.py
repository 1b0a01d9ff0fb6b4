"""Ehrlich functions (Stanton et al. 2024, arXiv 2407.00236): a closed-form test suite for sequence design with a
known optimum, taken from ``pytorch-holo`` (``holo.test_functions.closed_form.Ehrlich``).

A function is named by ``num_states`` letters, length ``dim``, ``num_motifs`` spaced motifs of ``motif_length``,
``quantization`` and ``random_seed``. A discrete Markov process (DMP) with banned transitions decides which
sequences are feasible (holo scores the others minus infinity); its own samples (``initial_solution(n)``) are the
"natural" sequences the pre-trained model learns. The objective is the product over motifs of the quantised
fraction of each motif present; its optimum is 1.0.

Here: token i is letter ``STATE_LETTERS[i]``; the domain's naturalness adds, to the sequence domain's metrics, the
exact ``feasible_fraction`` (DMP log-likelihood above minus infinity), and the objective's own evidence:
``solved_fraction`` (samples at the optimum 1.0) and ``best_value``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from svdd_lightning.domains.sequences import SequenceDomain
from svdd_lightning.errors import CheckpointError, ConfigError

# 36 letters that survive upper-casing and FASTA: the suite's standard functions use 32 states.
STATE_LETTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OPTIMUM = 1.0
# What names a function: the arguments of holo's constructor that decide its motifs, spacings and DMP.
FUNCTION_KEYS = ("num_states", "dim", "num_motifs", "motif_length", "quantization", "random_seed")


def holo_ehrlich(*, num_states: int, dim: int, num_motifs: int, motif_length: int, quantization: int | None,
                 random_seed: int):
    """holo's Ehrlich function for these arguments (noise-free, maximised). Raises a ConfigError naming the fix
    when pytorch-holo is not installed or the arguments admit no solution."""
    return _cached_ehrlich(int(num_states), int(dim), int(num_motifs), int(motif_length),
                           None if quantization is None else int(quantization), int(random_seed))


@lru_cache(maxsize=8)
def _cached_ehrlich(num_states, dim, num_motifs, motif_length, quantization, random_seed):
    # One object per function and process: its construction draws the DMP and the motifs (deterministic in the
    # seed), and the domain, the reward and the DataModule of one run share it.
    try:
        from holo.test_functions.closed_form import Ehrlich
    except ImportError as exc:
        raise ConfigError(
            f"domain=ehrlich needs pytorch-holo ({exc}). Run `make setup`, or install it by hand with "
            "`pip install --no-deps pytorch-holo==0.0.5` plus `pip install botorch pooch` (its own pins want "
            "numpy<2).") from exc
    if not 2 <= num_states <= len(STATE_LETTERS):
        raise ConfigError(f"ehrlich.num_states={num_states} is out of range: this domain writes one letter per state, "
                          f"so 2 to {len(STATE_LETTERS)} states (the suite's standard functions use 32).")
    if quantization is not None and not 1 <= quantization <= motif_length:
        raise ConfigError(f"ehrlich.quantization={quantization} must be between 1 and ehrlich.motif_length="
                          f"{motif_length} (holo's quantised motif presence), or null for none.")
    try:
        return Ehrlich(num_states=num_states, dim=dim, num_motifs=num_motifs, motif_length=motif_length,
                       quantization=quantization, random_seed=random_seed, noise_std=None, negate=False)
    except (ValueError, ZeroDivisionError) as exc:
        raise ConfigError(f"ehrlich.dim={dim} cannot hold ehrlich.num_motifs={num_motifs} motifs of ehrlich."
                          f"motif_length={motif_length} ({exc}); make dim at least num_motifs x motif_length.") from exc
    except RuntimeError as exc:  # holo found no ergodic Markov process for these states and seed
        raise ConfigError(f"holo could not build a Markov process for ehrlich.num_states={num_states}, "
                          f"ehrlich.random_seed={random_seed} ({exc}); try another random_seed or more states.") from exc


def dmp_log_likelihood(function, tokens: Tensor) -> Tensor:
    """Log-likelihood (B,) of long tokens under the function's Markov process: minus infinity for a sequence with a
    banned transition (or a token outside the states, such as a leftover mask)."""
    from holo.test_functions.elemental import dmp_sample_log_likelihood

    return _on_states(function, tokens, lambda safe: dmp_sample_log_likelihood(
        samples=safe, initial_dist=function.initial_dist, transition_matrix=function.transition_matrix))


def ehrlich_values(function, tokens: Tensor) -> Tensor:
    """holo's objective (B,) of long tokens: in [0, 1] for feasible sequences, minus infinity for infeasible ones
    and for rows holding a token outside the states."""
    return _on_states(function, tokens, lambda safe: function(safe).to(torch.float64))


def _on_states(function, tokens: Tensor, score) -> Tensor:
    """``score`` (B,) of the rows whose tokens are all states of ``function``; minus infinity for the others (a
    leftover mask), which are scored as zeros so holo never sees an id outside its states."""
    tokens = tokens.long().cpu()
    inside = ((tokens >= 0) & (tokens < function.num_states)).all(dim=-1)
    out = score(torch.where(inside.unsqueeze(-1), tokens, torch.zeros_like(tokens)))
    return torch.where(inside, out, torch.full_like(out, -float("inf")))


class EhrlichDomain(SequenceDomain):
    """Sequences of an Ehrlich function's states, one letter per state (``0-9A-V`` for 32 states)."""

    name = "ehrlich"

    def __init__(self, *, num_states: int, dim: int, num_motifs: int, motif_length: int,
                 quantization: int | None, random_seed: int, native_name: str = "samples.fasta") -> None:
        self.function_args = {"num_states": int(num_states), "dim": int(dim), "num_motifs": int(num_motifs),
                              "motif_length": int(motif_length),
                              "quantization": None if quantization is None else int(quantization),
                              "random_seed": int(random_seed)}
        self.function = holo_ehrlich(**self.function_args)
        super().__init__(alphabet=STATE_LETTERS[:num_states], mask_letter="-", naturalness_reference=None,
                         native_name=native_name)

    @torch.no_grad()
    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        """The sequence metrics (ELBO, unique fraction, diversity) plus ``feasible_fraction`` (exact, under the
        function's Markov process), the mean DMP log-likelihood of the feasible samples, ``solved_fraction`` (value
        1.0) and ``best_value`` of the objective over the feasible samples (left out when none is)."""
        out = super().naturalness(samples, diffusion=diffusion, seed=seed, init=init)
        tokens = self.tokens(samples)
        ll = dmp_log_likelihood(self.function, tokens)
        feasible = torch.isfinite(ll)
        values = ehrlich_values(self.function, tokens)
        out["feasible_fraction"] = float(feasible.double().mean())
        if feasible.any():
            out["dmp_log_likelihood"] = float(ll[feasible].double().mean())
        out["solved_fraction"] = float((values >= OPTIMUM).double().mean())
        if feasible.any():  # JSON has no minus infinity: left out when no sample is feasible
            out["best_value"] = float(values[feasible].max())
        return out

    def write_reference(self, datamodule: Any, directory: Path) -> list[Path]:
        return []  # feasibility is exact here: no held-out statistics needed

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"ehrlich": dict(self.function_args)}

    def check_checkpoint(self, path: str | Path, metadata: dict[str, Any]) -> None:
        """A pre-trained model learned one function's Markov process: refuse one trained for another (the process
        depends on num_states, dim and random_seed)."""
        stored = metadata.get("ehrlich")
        if stored is None:
            return
        process = ("num_states", "dim", "random_seed")
        differs = {k: (stored.get(k), self.function_args[k]) for k in process if stored.get(k) != self.function_args[k]}
        if differs:
            shown = ", ".join(f"ehrlich.{k}={mine} (checkpoint: {theirs})" for k, (theirs, mine) in differs.items())
            raise CheckpointError(
                f"checkpoint {path} was trained on another Ehrlich function's Markov process: {shown}. Pass "
                f"the checkpoint of this function (diffusion.checkpoint=PATH), or train one with `python train.py "
                f"stage=pretrain domain=ehrlich` and these ehrlich.* options.")
