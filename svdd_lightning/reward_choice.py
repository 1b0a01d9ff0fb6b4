"""Which rewards a composed config chose, read from config values alone (no CLI choice names, no sys.argv).

Each reward file (configs/reward/NAME.yaml) names itself in a one-entry mapping, ``components: {NAME: NAME}``.
``reward=[qed,sa]`` is Hydra's own selection of several options of a group: it merges the chosen files into one
``reward`` node, and mappings merge, so ``reward.components`` holds ``{qed: qed, sa: sa}``; the files' other keys
merge too (the last one wins) and are not read when several rewards are chosen: each is built from its own file.
``reward=multi reward.components=[qed,my_module.my_score]`` lists names or a function's import path. A reward
file of a user's own without ``components`` is one reward. How several combine (weights, scales, combine, alpha)
is configs/reward/shared/combination.yaml, which every reward file lists in its defaults.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from svdd_lightning.errors import ConfigError

COMBINATION_OPTIONS = ("weights", "scales", "combine", "alpha")  # configs/reward/shared/combination.yaml
MULTI_REWARD = "svdd_lightning.rewards.multi.MultiReward"
CUSTOM = "custom"  # the resolver's name for a node without a name mapping (build.py then refuses it)


def spec_name(spec: str) -> str:
    """A component's name: the reward's name, or a function's own name for its import path (my_module.my_score)."""
    return spec.rsplit(".", 1)[1] if "." in spec else spec


def chosen_specs(components: Any) -> list[str]:
    """The specs of ``reward.components``: the merged mapping's keys, or the listed names and import paths."""
    if components is None:
        return []
    if isinstance(components, (DictConfig, dict)):
        return [str(k) for k in components]
    if isinstance(components, (ListConfig, list, tuple)):
        return [str(s) for s in components]
    raise ConfigError(f"reward.components={components!r}: list the rewards to combine, e.g. reward=[qed,sa] or "
                      f"reward=multi reward.components=[qed,my_module.my_score].")


NAMELESS = ("the reward config does not name itself: every reward file holds a one-entry mapping of its name, "
            "e.g. `components: {my_score: my_score}` in my_score.yaml (configs/reward/*.yaml all do), so that "
            "reward=[a,b] can tell which rewards were chosen; add that line to your reward file.")


def chosen_rewards(reward: DictConfig) -> dict[str, str]:
    """{name: spec} of the rewards a reward node chose (one entry for a single reward). A node without the name
    mapping is refused: merged into a list, such a file would be dropped without a word."""
    specs = chosen_specs(reward.get("components"))
    if not specs:
        raise ConfigError(NAMELESS)
    named: dict[str, str] = {}
    for spec in specs:
        name = spec_name(spec)
        if name in named:
            raise ConfigError(f"reward.components names '{name}' twice; give each component once.")
        named[name] = spec
    return named


def reward_option(specs: list[str]) -> str:
    """The command-line spelling that chooses these rewards: reward=[qed,sa], or with a function's import path
    (which names no file of the reward group) reward=multi reward.components=[qed,my_module.my_score]."""
    listed = f"[{','.join(specs)}]"
    return f"reward=multi reward.components={listed}" if any("." in s for s in specs) else f"reward={listed}"


def is_several(reward: DictConfig) -> bool:
    """Several rewards at once: more than one chosen, or reward=multi (which then needs two or more). A malformed
    reward.components is not several: svdd_lightning/options.py then names it with the type it takes."""
    try:
        specs = chosen_specs(reward.get("components"))
    except ConfigError:
        specs = []
    return len(specs) > 1 or str(reward.get("_target_", "")) == MULTI_REWARD


def reward_label(reward: DictConfig) -> str:
    """The reward's name in file names, domain.reward_scale lookups and summaries: qed, or qed+sa."""
    return "+".join(chosen_rewards(reward))


@functools.cache
def combination_defaults() -> dict[str, Any]:
    """configs/reward/shared/combination.yaml's values: what a single reward's node holds unless the user set one."""
    from svdd_lightning.paths import CONFIG_DIR

    return dict(OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "reward" / "shared" / "combination.yaml")))


def takes_argument(target: str, key: str) -> bool:
    """Whether the class or function at ``target`` has a parameter named ``key`` (not only **kwargs)."""
    from hydra.utils import get_object

    try:
        obj = get_object(target)
        parameters = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
    except Exception:  # an unimportable target is reported by the reward's builder, with its name
        return False
    return key in parameters and parameters[key].kind is not inspect.Parameter.VAR_KEYWORD


def passes_combination_option(reward: DictConfig, key: str) -> bool:
    """Whether a single reward gets the combination option ``key``: only when its class or function takes an
    argument of that name and the user set it (a value other than shared/combination.yaml's), so a reward's own
    default (say alpha=0.3) is not replaced by the combination's."""
    target = "" if OmegaConf.is_missing(reward, "_target_") else str(reward.get("_target_", ""))
    if not target or key not in reward or not takes_argument(target, key):
        return False
    value = reward[key]
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return value != combination_defaults().get(key)


def own_reward_node(cfg: DictConfig) -> DictConfig:
    """One reward's own config (``cfg.reward``): without its name mapping, and without the combination options
    (unless passes_combination_option)."""
    reward = cfg.reward
    drop = {"components", "defaults"} | {k for k in COMBINATION_OPTIONS if not passes_combination_option(reward, k)}
    # A copy of the whole config, so that interpolations such as ${domain.name} still resolve in the node.
    root = copy.deepcopy(cfg)
    with open_dict(root.reward):
        for key in drop & set(root.reward):
            del root.reward[key]
    return root.reward


def reward_config(cfg: DictConfig) -> dict[str, Any]:
    """The reward as it is built, as a plain dict (recorded with values and rollouts, and checked against them):
    one reward's own config, or for several the combination in reward=multi's form (its components listed)."""
    if is_several(cfg.reward):
        merged = OmegaConf.to_container(cfg.reward, resolve=True)
        return {"_target_": MULTI_REWARD, "components": list(chosen_rewards(cfg.reward).values()),
                **{k: merged.get(k) for k in COMBINATION_OPTIONS}}
    return OmegaConf.to_container(own_reward_node(cfg), resolve=True)


def register_resolvers() -> None:
    """``${reward_label:${reward.components}}`` for configs (SMC's alpha, the output folder): the chosen rewards'
    name from config values."""
    if not OmegaConf.has_resolver("reward_label"):
        OmegaConf.register_new_resolver(
            "reward_label", lambda components: "+".join(spec_name(s) for s in chosen_specs(components)) or CUSTOM)
