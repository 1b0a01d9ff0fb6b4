"""The Python API beside the CLI: ``svdd_lightning.decode(...)``, the code path ``decode.py`` runs.

    import svdd_lightning as svdd
    result = svdd.decode(diffusion=diffusion, reward=my_function, domain=svdd.NucleotideDomain(alphabet="ACGT"),
                         decoder="svdd_pm", num_samples=16, seed=0)
    result.texts, result.rewards, result.summary

Decoding runs through ``trainer.predict`` over global sample indices (svdd_lightning/predictions.py),
so a sample depends only on (seed, index): the same samples come out of a notebook, of ``decode.py``
and of a DDP run on N GPUs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from svdd_lightning.calls import KINDS, calls_record, summed
from svdd_lightning.decoders.base import Decoder
from svdd_lightning.errors import ConfigError, RewardError
from svdd_lightning.modules.decoding import DecodingModule
from svdd_lightning.predictions import index_loader, merge_batches
from svdd_lightning.rewards.build import as_reward
from svdd_lightning.rewards.guard import GuardedReward
from svdd_lightning.rewards.latent import DecodedReward, reward_of_states
from svdd_lightning.starts import StartPlan


@dataclass
class DecodeResult:
    """What a decode returns (on rank zero): samples in index order and the summary of summary.json."""

    indices: list[int]
    samples: torch.Tensor
    rewards: np.ndarray
    texts: list[str]
    summary: dict[str, Any]
    traces: list[dict[str, list[float]]] = field(default_factory=list)
    # Several rewards at once (rewards/multi.py): each component's reward of every sample.
    components: dict[str, np.ndarray] | None = None


def reward_stats(rewards: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(rewards)), "median": float(np.median(rewards)),
            "q90": float(np.quantile(rewards, 0.9)), "min": float(np.min(rewards)), "max": float(np.max(rewards))}


def build_decoder(name: str, *, reward: Any, diffusion: Any, value: Any = None,
                  search_path: Sequence[str | Path] = (), **options: Any) -> Decoder:
    """A decoder by its config name: a file of the decoder config group (configs/decoder/NAME.yaml: pretrained,
    best_of_n, svdd_pm, svdd_mc, svdd_r, smc, dps, beam; or your own NAME.yaml in ``DIR/decoder/`` of a directory of
    ``search_path``), built from the class the file names with ``options`` (decoder/registry.py). The value the file
    selects is the default where one is needed: the posterior mean for value=posterior_mean; a learned value
    (svdd_mc) must be passed as ``value`` (a trained LearnedValue); DPS needs one unless the reward is
    differentiable."""
    from hydra.utils import get_class

    from svdd_lightning.build import refinement_options, share_max_batch
    from svdd_lightning.cli import accepts
    from svdd_lightning.decoders.refine import with_refinement
    from svdd_lightning.decoders.registry import decoder_entry
    from svdd_lightning.values.posterior_mean import PosteriorMeanValue

    entry = decoder_entry(name, search_path)
    cls = get_class(entry.target)
    takes_value = accepts(entry.target, "value")
    if entry.value == "learned" and value is None and not getattr(cls, "value_only_without_reward_gradient", False):
        raise ConfigError(f"decoder {name} needs value=LearnedValue(...) with trained weights (train.py stage=value); "
                          f"svdd_pm needs none.")
    if entry.value == "posterior_mean" and value is None:
        value = PosteriorMeanValue(reward=reward, diffusion=diffusion)
    rounds, fraction = refinement_options(options)
    if "max_batch" in options:
        share_max_batch(diffusion, options["max_batch"])
    decoder = cls(reward=reward, **({"value": value} if takes_value else {}), **options)
    return with_refinement(decoder, diffusion=diffusion, rounds=rounds, fraction=fraction)


def decode(*, diffusion: Any, reward: Any, decoder: str | Decoder = "svdd_pm", domain: Any = None,
           value: Any = None, num_samples: int = 64, seed: int = 0, batch_size: int = 64,
           decoder_options: dict[str, Any] | None = None, reward_floor: float | None = None,
           naturalness: bool = True, trainer: L.Trainer | None = None, callbacks: Sequence[L.Callback] = (),
           collect: Callable[[], dict[str, Any]] | None = None, skip: frozenset[int] = frozenset(),
           names: dict[str, Any] | None = None, reference: np.ndarray | None = None,
           init: StartPlan | dict[str, Any] | None = None,
           search_path: Sequence[str | Path] = ()) -> DecodeResult | None:
    """Decode ``num_samples`` samples; returns a :class:`DecodeResult` on rank zero (None on other ranks).

    Args:
        diffusion: a pre-trained :class:`~svdd_lightning.diffusion.base.Diffusion` (weights loaded).
        reward: a tensor Reward, an ObjectReward, or a plain function ``f(list[obj]) -> list[float]`` over
            the objects of ``domain`` (see rewards/base.py).
        decoder: a name (see :func:`build_decoder`; options in ``decoder_options``) or a built Decoder
            (then ``reward`` must be the Reward module it was built with).
        domain: the :class:`~svdd_lightning.domains.base.Domain` of the samples: texts, naturalness,
            and the objects a reward over objects sees. Without it, texts are empty and no naturalness.
        value: a value function for svdd_mc / dps (others default to the posterior mean).
        reward_floor: replace a non-finite reward by this number (counted) instead of stopping.
        trainer, callbacks: a Lightning Trainer (default: one CPU/GPU device, no logger) and its callbacks.
        collect: for multi-device runs, a function returning the merged predictions of every rank
            (e.g. read from the shards of a prediction writer); default: this process's predictions.
        skip: first indices of batches already decoded (a resumed run).
        names: how the summary names the run (domain, decoder, steps).
        reference: pre-trained rewards to summarise beside the run's (summary.json's ``reference``).
        init: where the samples begin, as ``init.*`` on the command line: ``{"fasta": FILE, "mask": "99-109"}``
            (or ``"smiles"``; a masked model and ``domain`` needed), or a built
            :class:`~svdd_lightning.inpainting.Inpainting`; None: from the prior.
        search_path: directories whose ``decoder/NAME.yaml`` files add decoders to the names (as
            ``hydra.searchpath`` on the command line).
    """
    names = dict(names or {})
    init = starts_from(init, domain=domain, diffusion=diffusion)
    if isinstance(reward, DecodedReward):  # already the reward of this model's states (decode.py)
        module_reward = reward
    else:
        guarded = reward if isinstance(reward, GuardedReward) else GuardedReward(
            reward=as_reward(reward, domain=domain), floor=reward_floor,
            describe=None if domain is None else lambda x: domain.describe(x.detach().cpu()))
        module_reward = reward_of_states(guarded, diffusion)  # a latent model's rewards score decoded images
    if isinstance(decoder, str):
        names.setdefault("decoder", decoder)
        decoder = build_decoder(decoder, reward=module_reward, diffusion=diffusion, value=value,
                                search_path=search_path, **(decoder_options or {}))
    elif decoder_options:
        raise ConfigError("decoder_options apply to a decoder given by name; a built Decoder already has its options.")
    elif not getattr(diffusion, "states_are_data", True) and not isinstance(reward, DecodedReward):
        # A built decoder scores the states with the reward it was built with: for latents or a masked LM's ids that
        # reward must see data, through svdd_lightning.rewards.latent.reward_of_states.
        raise ConfigError("this diffusion's states are not data (latents, or a masked LM's token ids): build the "
                          "decoder with reward_of_states(reward, diffusion) (svdd_lightning.rewards.latent) and pass "
                          "that reward here, or give the decoder by name.")
    if trainer is None:
        trainer = L.Trainer(accelerator="auto", devices=1, logger=False, inference_mode=False,
                            enable_model_summary=False, callbacks=list(callbacks))
    elif callbacks:
        raise ConfigError("pass callbacks to your Trainer (trainer=L.Trainer(callbacks=...)), not to decode().")
    if collect is None and (trainer.world_size > 1 or skip):
        # Each rank only sees its own batches (and a resumed run only the new ones): merging needs the
        # predictions every rank wrote, e.g. callbacks/shard_writer.py's ShardWriter and its collect.
        raise ConfigError("a multi-device or resumed decode needs collect=: a function returning every batch's "
                          "predictions merged (decode.py passes its shard writer's collect).")
    module = DecodingModule(diffusion=diffusion, decoder=decoder, reward=module_reward, value=value, seed=seed,
                            init=init)
    loader = index_loader(num_samples, batch_size, skip)
    num_decoded = sum(len(batch) for batch in loader.dataset)  # a resumed run times only what it decodes now
    start = time.perf_counter()
    predictions = None
    try:
        if len(loader) > 0:
            predictions = trainer.predict(module, dataloaders=loader, return_predictions=collect is None)
    finally:
        module_reward.close()  # the reward's process pool, if it made one
    trainer.strategy.barrier()
    wall = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    merged = collect() if collect is not None else merge_batches(predictions or [])
    rewards = merged["rewards"].numpy()
    if not np.isfinite(rewards).all():
        raise RewardError(f"the reward '{module_reward.name}' returned NaN or inf for some samples; a reward must "
                          f"return a finite floor for invalid objects (see svdd_lightning/rewards/base.py).")
    indices = merged["index"].tolist()
    texts = domain.to_text(merged["samples"]) if domain is not None else [""] * len(indices)
    nat = domain.naturalness(merged["samples"], diffusion=module.diffusion, seed=seed, init=init) \
        if naturalness and domain is not None else {}
    guard = module_reward.inner if isinstance(module_reward, DecodedReward) else module_reward
    summary = summarise(names=names, decoder=decoder, reward=guard, rewards=rewards, made=merged["calls_made"],
                        asked=merged["calls_asked"],
                        seed=seed, wall=wall, num_decoded=num_decoded, naturalness=nat, devices=trainer.world_size,
                        reference=reference)
    if init is not None:
        summary["init"] = init.describe()
    if "round_rewards" in merged:  # refinement: the kept designs' rewards after every round
        per_round = merged["round_rewards"].numpy()
        summary["refine"] = {"rounds": int(per_round.shape[1] - 1), "median_per_round": np.median(per_round, 0).tolist(),
                             "mean_per_round": per_round.mean(0).tolist()}
    components = component_rewards(guard, merged["samples"])
    if components is not None:
        summary["components"] = {name: reward_stats(values) for name, values in components.items()}
    return DecodeResult(indices=indices, samples=merged["samples"], rewards=rewards, texts=texts, summary=summary,
                        traces=list(merged.get("trace", [])), components=components)


def starts_from(init: StartPlan | dict[str, Any] | None, *, domain: Any, diffusion: Any) -> StartPlan | None:
    """The start plan ``decode(init=...)`` was given: built from ``init.*``-style options, or as it is."""
    if init is None or isinstance(init, StartPlan):
        return init
    if not isinstance(init, dict):
        raise ConfigError(f"init={init!r}: give {{'fasta': FILE, 'mask': '99-109'}} (or 'smiles'), as init.fasta= and "
                          f"init.mask= on the command line, or an Inpainting (svdd_lightning.inpainting).")
    if domain is None:
        raise ConfigError("init= reads seeds through the domain: pass domain= too.")
    from svdd_lightning.inpainting import seeds_from_options

    unknown = sorted(set(init) - {"fasta", "smiles", "mask"})
    if unknown:
        raise ConfigError(f"init={init!r}: {unknown[0]} is not an option of init; its options are fasta, smiles, mask.")
    return seeds_from_options(init, domain=domain, diffusion=diffusion)


def component_rewards(reward: Any, samples: torch.Tensor) -> dict[str, np.ndarray] | None:
    """Each component's reward of the samples (data) when the reward combines several (rewards/multi.py)."""
    from svdd_lightning.rewards.multi import multi_reward_inside

    inner = multi_reward_inside(reward)  # inside the guard
    if inner is None:
        return None
    device = next((b.device for b in inner.buffers()), samples.device)
    with torch.no_grad():
        values = inner.component_values(samples.to(device))
    return {name: v.detach().float().cpu().numpy() for name, v in values.items()}


def cache_stats(reward: Any) -> dict | None:
    """The memoised/pooled reward's counts, through its wrappers (guard)."""
    inner = getattr(reward, "inner", reward)
    return inner.cache_stats() if hasattr(inner, "cache_stats") else None


def summarise(*, names: dict[str, Any], decoder: Decoder, reward: GuardedReward, rewards: np.ndarray,
              made: list[dict[str, int]], asked: list[dict[str, int]], seed: int, wall: float, num_decoded: int,
              naturalness: dict[str, float], devices: int, reference: np.ndarray | None) -> dict[str, Any]:
    """summary.json's content (INTERFACE.md)."""
    n = len(rewards)
    calls = calls_record(summed(made), summed(asked), n)
    made_total, asked_total = calls["made"], calls["asked"]
    settings = decoder.settings()
    return {
        "domain": names.get("domain"),
        "reward": reward.name,
        "decoder": names.get("decoder", type(decoder).__name__),
        "num_samples": n,
        "num_candidates": settings.get("num_candidates", 1),
        "alpha": settings.get("alpha"),
        "steps": names.get("steps"),
        "seed": seed,
        "reward_stats": reward_stats(rewards),
        # What the samples cost: objects sent through the denoiser, the value networks and the reward, measured
        # (made) and as the algorithm asked for them (asked: the budget; made is less where copies of an object
        # were evaluated once, svdd_lightning/distinct.py), per sample and in all (svdd_lightning/calls.py).
        "calls": calls,
        "distinct_fraction": round(made_total["total"] / max(asked_total["total"], 1), 4),
        # Deprecated spellings of calls.* (one release): nfe = calls.made, nfe_per_sample and
        # calls_per_sample = calls.per_sample.made, nfe_requested_per_sample = calls.per_sample.asked.
        "nfe": {k: made_total[k] for k in KINDS},
        "nfe_per_sample": {k: calls["per_sample"]["made"][k] for k in KINDS},
        "calls_per_sample": calls["per_sample"]["made"],
        "nfe_requested_per_sample": {k: calls["per_sample"]["asked"][k] for k in KINDS},
        "wall_seconds": round(wall, 3),
        "wall_seconds_per_sample": round(wall / max(num_decoded, 1), 6),
        "naturalness": naturalness,
        "decoder_settings": settings,
        # Memoised/pooled CPU oracles (rewards/objects.py): rank zero's counts.
        "reward_cache": cache_stats(reward),
        # Non-finite rewards replaced by reward_floor (null: such a reward stops the run instead).
        "reward_floor": ({"value": reward.floor, "replaced": reward.replaced}
                         if isinstance(reward, GuardedReward) and reward.floor is not None else None),
        "devices": devices,
        "reference": None if reference is None else {"median": float(np.median(reference)),
                                                     "q90": float(np.quantile(reference, 0.9)),
                                                     "num_samples": int(reference.size)},
    }
