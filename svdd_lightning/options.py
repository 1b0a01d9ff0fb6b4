"""Every option of a composed decode/train config, checked before anything is built or written.

A wrong option should stop a run at once, with one line that names the option by its full key
(``decoder.alpha``) and says what it accepts, not as a traceback from deep inside Lightning or a
constructor after outputs were started. What an option accepts is read from where it is declared:

- a node with ``_target_`` (decoder, diffusion, networks, data, reward, trainer...): the typed, keyword-only
  constructor of its class (``typing.get_type_hints``); a range is declared on the parameter with
  ``Annotated[int, Range(ge=1)]`` (``AtLeastOne``, ``NonNegative``...), and a key the constructor does not take
  is refused by name;
- the entry points' own keys (``num_samples``, ``value_training.*``, ``domain.*`` ...): the tables below, whose
  types are the ones the code reading them expects;
- keys the builders consume before a constructor sees them (``decoder.max_batch=auto``, ``decoder.compile``,
  ``*.checkpoint``): ``BUILD_OPTIONS``.

Constructors keep their own checks (the Python API does not pass through here); this module lets a config be
refused before a single object is built, and gives the message a full key.
"""

from __future__ import annotations

import fnmatch
import inspect
import importlib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from svdd_lightning.annotations import conforms, describe, ranges_of, scalar_kind  # noqa: F401 (re-exported)
from svdd_lightning.errors import ConfigError
from svdd_lightning.reward_choice import COMBINATION_OPTIONS, is_several
from svdd_lightning.ranges import AtLeastOne, FiniteFloat, Fraction, NonNegative, NonNegativeInt, Positive, Range


# -- the entry points' own keys ------------------------------------------------------------------ #
COMMON_OPTIONS: dict[str, Any] = {
    "seed": NonNegativeInt,
    "steps": AtLeastOne,
    "output_dir": str,
    "method": str,  # the decoder file's own name (configs/decoder/NAME.yaml)
    "model.path": str | None,
    "domain.name": str,
    "domain.alphabet": str,
    "domain.seq_len": AtLeastOne,
    "domain.rewards": list[str],
    "domain.reward_scale.*": Positive,
    "domain.dps_guidance_scale": NonNegative,
    "domain.reference_dir": str | None,
    "domain.input_key": str,
    "domain.value_target": Literal["mean", "soft"],
    "domain.vocab": str,
    "domain.vocab_size": AtLeastOne,
    "domain.channels": AtLeastOne,
    "domain.image_size": AtLeastOne,
    "domain.compute_naturalness": bool,
    "domain.init.fasta": str | None,
    "domain.init.mask": str | list | None,
    "prompt": str | None,
    "value": dict | None,  # the value group's node (null: value=none)
    "value_network": dict | None,  # the domain's learned-value network (null: it has none)
    "guidance_scale": NonNegative,
    "negative_prompt": str,
    # domain=ehrlich's function (configs/ehrlich/NAME.yaml); the domain, the reward and the DataModule check its
    # combinations (svdd_lightning/domains/ehrlich.py)
    "ehrlich.name": str,
    "ehrlich.num_states": AtLeastOne,
    "ehrlich.dim": AtLeastOne,
    "ehrlich.num_motifs": AtLeastOne,
    "ehrlich.motif_length": AtLeastOne,
    "ehrlich.quantization": AtLeastOne | None,
    "ehrlich.random_seed": NonNegativeInt,
    "ehrlich.reward_scale": Positive,
}

DECODE_OPTIONS: dict[str, Any] = {
    **COMMON_OPTIONS,
    "num_samples": AtLeastOne,
    "batch_size": AtLeastOne,
    "reference_out": str | None,
    "compute_naturalness": bool,
    "overwrite": bool,
    "reward_floor": FiniteFloat | None,
    "init.fasta": str | None,
    "init.smiles": str | None,
    # 1-based positions or ranges ("99-109"), a list of them, a fraction in (0, 1), or "header"
    "init.mask": str | Fraction | list | None,
}

TRAIN_OPTIONS: dict[str, Any] = {
    **COMMON_OPTIONS,
    "stage": Literal["pretrain", "value", "oracle", "distill"],
    "checkpoint_every": AtLeastOne,
    "pretrain.lr": Positive,
    "pretrain.warmup_steps": NonNegativeInt,
    "pretrain.val_check_interval": AtLeastOne,
    "pretrain.init_from": str | None,
    "value_training.num_rollouts": AtLeastOne,
    "value_training.rollout_batch_size": AtLeastOne,
    "value_training.save_every": AtLeastOne,
    "value_training.batch_size": AtLeastOne,
    "value_training.lr": Positive,
    "value_training.weight_decay": NonNegative,
    "value_training.val_check_interval": AtLeastOne,
    "value_training.renoise": bool,
    "value_training.rollouts": str | None,
    "value_training.rescore": bool,
    "value_training.target": Literal["mean", "soft"],
    "value_training.soft_alpha": Positive | None,
    "oracle.network": dict | None,
    "oracle.task": Literal["auto", "regression", "classification"],
    "oracle.lr": Positive,
    "oracle.weight_decay": NonNegative,
    "oracle.val_check_interval": AtLeastOne,
    "distill.rounds": AtLeastOne,
    "distill.steps_per_round": AtLeastOne,
    "distill.samples_per_round": AtLeastOne,
    "distill.states_per_trajectory": AtLeastOne,
    "distill.num_candidates": AtLeastOne,
    "distill.alpha": NonNegative | None,
    "distill.batch_size": AtLeastOne,
    "distill.replay_size": AtLeastOne,
    "distill.kl_weight": NonNegative,
    "distill.lr": Positive,
    # training runs for this many optimizer steps (Lightning's -1 = forever is no use to a stage that must end)
    "trainer.max_steps": AtLeastOne,
}

# Keys the builders read themselves (svdd_lightning/build.py) before the constructor sees the rest.
BUILD_OPTIONS: dict[str, Any] = {
    "*.checkpoint": str | None,
    "decoder.max_batch": AtLeastOne | Literal["auto"] | None,
    "decoder.compile": bool,
    "decoder.refine_rounds": NonNegativeInt,
    "decoder.refine_fraction": Fraction,
    "trainer.devices": AtLeastOne | Literal["auto"] | list[int],
    "trainer.accelerator": Literal["cpu", "gpu", "cuda", "mps", "auto"],
    # a reward node's keys that name the chosen rewards and how several combine (svdd_lightning/reward_choice.py,
    # configs/reward/shared/combination.yaml); build.py takes them before a reward's constructor sees the rest
    "reward.components": list[str] | dict[str, str],
    "reward.weights": list[float] | None,
    "reward.scales": list[Positive] | None,
    "reward.combine": Literal["sum", "product"],
    "reward.alpha": Positive,
}

ENTRY_OPTIONS = {"decode": DECODE_OPTIONS, "train": TRAIN_OPTIONS}


# -- walking a composed config -------------------------------------------------------------------- #
@dataclass(frozen=True)
class Option:
    """One leaf of a composed config: its full key, its value, and the annotation that declares it (None: none)."""

    key: str
    value: Any
    annotation: Any
    owner: str  # where the declaration lives: a class path or the entry point's table


def lookup(table: Mapping[str, Any], key: str) -> Any:
    if key in table:
        return table[key]
    return next((a for pattern, a in table.items() if "*" in pattern and fnmatch.fnmatchcase(key, pattern)), None)


def locate(path: str) -> Any:
    """The object at a dotted import path (module, then attributes), or None when it cannot be imported."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def signature_of(target: str) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool] | None:
    """(parameters, resolved annotations, takes **kwargs) of a ``_target_``'s constructor or function."""
    obj = locate(target)
    if obj is None:  # an unimportable target is reported by the builder with its own message
        return None
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - a hint under TYPE_CHECKING only: fall back to the raw annotations
        hints = {}
    annotations = {}
    for name, p in params.items():
        if name in hints:
            annotations[name] = hints[name]
        elif p.annotation is not inspect.Parameter.empty and not isinstance(p.annotation, str):
            annotations[name] = p.annotation
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return params, annotations, takes_kwargs


FUNCTION_REWARD = "svdd_lightning.rewards.objects.FunctionReward"


def function_settings(target: str) -> dict[str, Any]:
    """For a ``_target_`` that is a plain function (a user's reward), the keys of its node that configure the
    framework's wrapping (FunctionReward's name/floor/workers/cache) with their annotations; {} otherwise."""
    from svdd_lightning.rewards.build import FUNCTION_OPTIONS

    obj = locate(target)
    if obj is None or inspect.isclass(obj) or not callable(obj):
        return {}
    _, annotations, _ = signature_of(FUNCTION_REWARD)
    return {key: annotations.get(key, Any) for key in FUNCTION_OPTIONS}


def leaf_value(node: DictConfig, key: Any) -> tuple[bool, Any]:
    """(resolved, value) of one child of a config node; an interpolation that cannot resolve here is skipped."""
    try:
        child = node[key]
    except (InterpolationResolutionError, OmegaConfBaseException, ValueError):
        return False, None
    if isinstance(child, (DictConfig, ListConfig)):
        try:
            return True, OmegaConf.to_container(child, resolve=True)
        except (InterpolationResolutionError, OmegaConfBaseException, ValueError):
            return False, None
    return True, child


def walk(cfg: DictConfig, table: Mapping[str, Any]) -> Iterator[Option]:
    """Every leaf option of ``cfg`` (Hydra's own node left out), with its declaration."""
    yield from _walk(cfg, "", table, owner=None)


def _walk(node: DictConfig, prefix: str, table: Mapping[str, Any], *, owner: str | None) -> Iterator[Option]:
    """The leaves under ``node``; ``owner`` is the ``_target_`` of ``node`` when it has one."""
    signature = signature_of(owner) if owner is not None else None
    settings = function_settings(owner) if owner is not None else {}
    for key in map(str, node):
        full = f"{prefix}{key}"
        if full == "hydra" or key.startswith("_"):
            continue
        raw = node._get_node(key)
        declared = lookup(BUILD_OPTIONS, full) or lookup(table, full)
        taken = signature is not None and key in signature[0]
        if full == "reward" and isinstance(raw, DictConfig) and is_several(raw):
            # Merged files of several rewards: their own keys are checked as each component is built (build.py
            # with_component_options, then its constructor); here only the name mapping and the combination.
            for name in ("components", *COMBINATION_OPTIONS):
                if name in raw:
                    resolved, value = leaf_value(raw, name)
                    if resolved:
                        yield Option(f"reward.{name}", value, lookup(BUILD_OPTIONS, f"reward.{name}"), "entry")
            continue
        if prefix == "reward." and key in COMBINATION_OPTIONS and taken:
            declared = None  # a single reward of the user's own that takes e.g. alpha: its annotation applies
        if declared is None and isinstance(raw, DictConfig) and "_target_" in raw:
            yield from _walk(raw, f"{full}.", table, owner=str(raw._get_node("_target_")._value()))
            continue
        if declared is None and isinstance(raw, DictConfig) and not taken:
            yield from _walk(raw, f"{full}.", table, owner=None)
            continue
        resolved, value = leaf_value(node, key)
        if not resolved or (value is None and OmegaConf.is_interpolation(node, key)):
            # null taken from another option (diffusion.path: ${model.path}): the builder names what is missing
            continue
        if declared is not None:
            yield Option(full, value, declared, "entry")
        elif signature is None:
            yield Option(full, value, None, owner or "entry")
        elif taken:
            yield Option(full, value, signature[1].get(key), owner)
        elif key in settings:  # reward.floor of a plain function: the framework's wrapping takes it
            yield Option(full, value, settings[key], FUNCTION_REWARD)
        elif settings:
            # another key of a plain function's node (the default reward's temperature after
            # reward._target_=my.function): rewards/build.py drops it with a warning, so it is no error here
            continue
        else:  # a key the constructor does not take (unless it takes **kwargs)
            yield Option(full, value, None if signature[2] else _UNKNOWN, owner)


class _Unknown:
    """The annotation of a key the target's constructor does not take."""


_UNKNOWN = _Unknown()


def problem(option: Option) -> str | None:
    """The error message for one option, or None when its value is accepted."""
    if option.annotation is _UNKNOWN:
        cls = option.owner.rsplit(".", 1)[-1]
        params = signature_of(option.owner)
        names = [n for n in (params[0] if params else {}) if n not in ("self", "args", "kwargs")]
        return (f"{option.key} is not an option of {cls}; its options are {', '.join(names) or 'none'} "
                f"(remove {option.key}=...).")
    if option.annotation is None or conforms(option.value, option.annotation):
        return None
    shown = "null" if option.value is None else option.value
    return f"{option.key}={shown} is not accepted: {option.key} takes {describe(option.annotation)}."


def check_config(cfg: DictConfig, *, entry: Literal["decode", "train"]) -> int:
    """Raise a ConfigError naming the first option of ``cfg`` whose value its declaration refuses; returns the
    number of options checked. Called by decode.py and train.py before anything is built or written."""
    checked = 0
    for option in walk(cfg, ENTRY_OPTIONS[entry]):
        message = problem(option)
        if message is not None:
            raise ConfigError(message)
        checked += option.annotation is not None
    return checked
