"""Turning what a user hands over as a reward into a :class:`Reward` module the decoders can call.

Accepted: a tensor :class:`Reward`; an :class:`ObjectReward` (run on the domain's objects); or a plain
function ``f(list[obj]) -> list[float]`` over the domain's objects (wrapped as a :class:`FunctionReward`).
From a config node, ``_target_`` names a Reward or ObjectReward class (built with the node's options)
or a plain function (the node's options other than name/floor/workers/cache are bound to it).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf

from svdd_lightning.errors import ConfigError
from svdd_lightning.rewards.base import Reward
from svdd_lightning.rewards.objects import FunctionReward, ObjectReward, ObjectRewardModule

FUNCTION_OPTIONS = ("name", "floor", "workers", "cache")


def as_reward(reward: Reward | ObjectReward | Callable[[list[Any]], Any], *, domain: Any) -> Reward:
    """A Reward module for ``reward`` on the objects of ``domain``."""
    if isinstance(reward, Reward):
        return reward
    if isinstance(reward, ObjectReward):
        return ObjectRewardModule(reward=reward, domain=domain)
    if callable(reward) and not inspect.isclass(reward):
        return ObjectRewardModule(reward=FunctionReward(fn=reward), domain=domain)
    raise ConfigError(f"the reward {reward!r} is neither a Reward, an ObjectReward nor a function of a list of "
                      f"objects; see svdd_lightning/rewards/base.py for the contract.")


def reward_from_config(node: DictConfig | dict, *, domain: Any) -> Reward:
    """Build the reward a config node describes (see the module docstring)."""
    if isinstance(node, DictConfig) and OmegaConf.is_missing(node, "_target_"):
        raise ConfigError("reward=function needs your function: pass reward._target_=my_module.my_function (a function "
                          "of a list of objects returning one float each; see docs/tutorials/own-reward.md).")
    if isinstance(node, DictConfig):
        missing = sorted(OmegaConf.missing_keys(node))
        if missing:
            raise ConfigError(f"the option reward.{missing[0]} has no value; pass reward.{missing[0]}=... on the "
                              f"command line (e.g. reward.checkpoint=PATH for reward=oracle).")
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    target = container.get("_target_")
    if not target:
        raise ConfigError("the reward config has no _target_; pick reward=NAME or set reward._target_=module.function.")
    try:
        obj = get_object(target)
    except Exception as exc:
        raise ConfigError(f"reward._target_={target} cannot be imported ({type(exc).__name__}: {exc}); give a "
                          f"module.Class or module.function that Python can import (is its folder on PYTHONPATH?).")
    if inspect.isclass(obj):
        return as_reward(instantiate(container), domain=domain)
    if not callable(obj):
        raise ConfigError(f"reward._target_={target} is not a class or function.")
    options = {k: v for k, v in container.items() if k != "_target_"}
    settings = {k: options.pop(k) for k in FUNCTION_OPTIONS if k in options}
    parameters = inspect.signature(obj).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [k for k in options if k not in parameters and not takes_any]
    if unknown:
        # Typically the options of the domain's default reward this function replaces (mfe's temperature):
        # `reward._target_=my.function` must work on every domain, so they are dropped, and said so.
        warnings.warn(f"reward option(s) {', '.join(unknown)} are not arguments of {target} and are ignored "
                      f"(use reward=function reward._target_={target} to start from no options)", stacklevel=2)
        options = {k: v for k, v in options.items() if k not in unknown}
    return as_reward(FunctionReward(fn=obj, options=options, **settings), domain=domain)
