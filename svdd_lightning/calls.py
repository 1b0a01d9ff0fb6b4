"""Calls, measured and asked for: what a decode cost, in one record.

A decoder states what it *asked* for (its budget: the objects its algorithm sends through the denoiser, the
value and the reward, before deduplication) in a :class:`CallLedger`. What was *made* is measured, not declared:
:class:`CallMeter` counts the rows that really pass through the diffusion's ``denoise``, through every value
network and through the reward while a decoder runs, so a decoder that forgets to declare a call still has it
counted, and the two can be compared (``made <= asked``; equal without deduplication).

One record, the same in summary.json, benchmark.json and W&B (``calls``; INTERFACE.md), in all and per sample::

    {"made": {denoiser, value, reward, total}, "asked": {...},
     "per_sample": {"made": {...}, "asked": {...}}}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import nn

KINDS = ("denoiser", "value", "reward")


@dataclass
class CallLedger:
    """The calls a decoder asked for, per kind (objects, summed over the batch)."""

    asked: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def ask(self, kind: str, count: int) -> None:
        self.asked[kind] += int(count)

    def ask_for_scores(self, value: Any, t: int, count: int) -> None:
        """Scoring ``count`` states at step ``t`` (values.base.score_states): the reward at t = 0 (v_0 = r), the
        value's own cost per state otherwise."""
        per_state = {"reward": 1} if int(t) == 0 else value.asked_per_state()
        for kind, n in per_state.items():
            self.ask(kind, n * count)

    def add(self, asked: Mapping[str, int]) -> None:
        """Another decode's asked calls (a refinement round's)."""
        for kind in KINDS:
            self.ask(kind, asked[kind])

    def as_dict(self) -> dict[str, int]:
        return dict(self.asked)


class CallMeter:
    """Counts the rows through a diffusion's ``denoise``, the value networks and the reward while it is attached
    (``with meter.attached(...)``). Rows, not calls: a call on 40 candidates counts 40, as the ledger does."""

    def __init__(self) -> None:
        self.made = dict.fromkeys(KINDS, 0)

    def count(self, kind: str, rows: int) -> None:
        self.made[kind] += int(rows)

    @contextmanager
    def attached(self, *, diffusion: nn.Module, value: nn.Module | None, reward: nn.Module | None) -> Iterator[CallMeter]:
        """Count while the block runs; the model is left as it was afterwards, also on an error."""
        handles = []
        for network in value_networks(value):
            handles.append(network.register_forward_pre_hook(self._hook("value"), with_kwargs=True))
        if isinstance(reward, nn.Module):  # the decoding module's rewards always are (api.as_reward)
            handles.append(reward.register_forward_pre_hook(self._hook("reward"), with_kwargs=True))
        # denoise is a method, not a module's forward (and its network sees rows padded to whole blocks,
        # svdd_lightning/distinct.py): count the rows it is given, by shadowing it on the instance.
        shadowed = vars(diffusion).get("denoise")  # another wrapper already on the instance (a timer's)
        original = diffusion.denoise

        def counted_denoise(x_t, t, *args, **kwargs):
            self.count("denoiser", x_t.shape[0])
            return original(x_t, t, *args, **kwargs)

        object.__setattr__(diffusion, "denoise", counted_denoise)
        try:
            yield self
        finally:
            if shadowed is None:
                object.__delattr__(diffusion, "denoise")
            else:
                object.__setattr__(diffusion, "denoise", shadowed)
            for handle in handles:
                handle.remove()

    def _hook(self, kind: str):
        def hook(module, args, kwargs):
            first = args[0] if args else next(iter(kwargs.values()))  # the states or objects, (rows, ...)
            self.count(kind, first.shape[0])
        return hook


def measured(decoder: Any, diffusion: nn.Module, batch_size: int, generators: list, start: Any = None
             ) -> tuple[Any, dict[str, int]]:
    """Run ``decoder(diffusion, batch_size, generators, start)`` and measure its calls: (DecodeOutput, made)."""
    meter = CallMeter()
    with meter.attached(diffusion=diffusion, value=decoder.value, reward=decoder.reward):
        out = decoder(diffusion, batch_size, generators, start)
    return out, dict(meter.made)


def value_networks(value: nn.Module | None) -> list[nn.Module]:
    """The modules of ``value`` that run a network of their own (a learned value; each component of a
    MultiValue), as opposed to values computed from the denoiser and the reward (the posterior mean)."""
    if value is None:
        return []
    from svdd_lightning.values.base import ValueFunction

    return [m for m in value.modules() if isinstance(m, ValueFunction) and m.runs_a_network]


def calls_record(made: Mapping[str, int], asked: Mapping[str, int], num_samples: int) -> dict[str, Any]:
    """The ``calls`` record of ``num_samples`` samples (module docstring)."""
    def with_total(counts: Mapping[str, float]) -> dict[str, float]:
        return {**{k: counts[k] for k in KINDS}, "total": sum(counts[k] for k in KINDS)}

    n = max(int(num_samples), 1)
    return {"made": with_total({k: int(made[k]) for k in KINDS}),
            "asked": with_total({k: int(asked[k]) for k in KINDS}),
            "per_sample": {"made": with_total({k: made[k] / n for k in KINDS}),
                           "asked": with_total({k: asked[k] / n for k in KINDS})}}


def summed(batches: list[Mapping[str, int]]) -> dict[str, int]:
    """Per-kind sums over batches."""
    return {k: int(sum(b[k] for b in batches)) for k in KINDS}
