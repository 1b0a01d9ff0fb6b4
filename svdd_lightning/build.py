"""Building objects from Hydra config nodes. ``checkpoint`` keys are not constructor arguments:
they are popped here and the weights loaded after the object is built, with checked metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from svdd_lightning.checkpoints import check_value_reward, load_state, read_checkpoint, shipped_value_path
from svdd_lightning.cli import accepts
from svdd_lightning.errors import ConfigError
from svdd_lightning.reward_choice import (COMBINATION_OPTIONS, MULTI_REWARD, chosen_rewards, is_several, own_reward_node, reward_config, reward_label,
                                          reward_option)


def instantiate_option_node(node: dict, key: str, **kwargs: Any) -> Any:
    """``instantiate(node)`` of the config node at ``key``; a constructor's ValueError (a check across options that
    svdd_lightning/options.py cannot see, e.g. SMC's final_resampling=false with num_candidates=2) becomes a
    ConfigError that names the option by its full key when the message starts with the parameter's name."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, ValueError):
            cause = cause.__cause__
        if cause is None or isinstance(cause, ConfigError):
            raise
        first = str(cause).split(" ", 1)[0].split("=", 1)[0].removesuffix("'s")
        option = f"{key}.{first}" if first in node else key
        raise ConfigError(f"{option}: {cause} (set it with {option}=VALUE).") from None


def split_checkpoint(node: DictConfig | dict) -> tuple[dict, str | None]:
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    checkpoint = container.pop("checkpoint", None)
    return container, checkpoint


def build_with_checkpoint(node: DictConfig | dict, *, kind: str, domain: str | None, prefix: str,
                          **kwargs: Any) -> Any:
    """Instantiate ``node`` (minus its ``checkpoint``) and load the checkpoint's weights under
    ``prefix`` (e.g. 'diffusion.' or 'value.') into it."""
    container, checkpoint = split_checkpoint(node)
    obj = instantiate(container, **kwargs)
    if checkpoint:
        load_state(obj, checkpoint, kind=kind, domain=domain, prefix=prefix)
    return obj


# -- the objects of a composed decode/train config -------------------------------------------- #


def build_domain(cfg: DictConfig) -> Any:
    """The run's Domain (the ``objects`` node of the domain config)."""
    return instantiate(cfg.objects)


def build_diffusion(cfg: DictConfig, domain: Any) -> Any:
    """The pre-trained diffusion with its checkpoint's weights, checked against the domain (e.g. vocabulary);
    with ``model.path=DIR``, a user's diffusers pipeline folder instead (its own UNet and scheduler)."""
    model_path = (cfg.get("model") or {}).get("path")
    if model_path and "path" not in cfg.diffusion:  # a node that takes the path itself loads the folder (latent_image)
        from svdd_lightning.diffusion.gaussian import load_diffusers_folder

        return load_diffusers_folder(path=str(model_path), num_inference_steps=int(cfg.steps),
                                     eta=float(cfg.diffusion.get("eta", 0.0)))
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    checkpoint = cfg.diffusion.get("checkpoint")
    if checkpoint:
        domain.check_checkpoint(checkpoint, read_checkpoint(checkpoint).get("svdd", {}))
    return diffusion


def build_reward(cfg: DictConfig, domain: Any) -> Any:
    """The reward module of ``cfg.reward`` (a class or a plain function, rewards/build.py); one of ours must
    belong to the domain."""
    if is_several(cfg.reward):
        return build_multi_reward(cfg, domain)
    chosen_rewards(cfg.reward)  # the reward names itself (else a list of it would have dropped it)
    return build_one_reward(cfg, domain)


def build_one_reward(cfg: DictConfig, domain: Any) -> Any:
    """One reward (``cfg.reward``, or a component of several), built from its own keys."""
    from svdd_lightning.rewards.build import reward_from_config

    reward = reward_from_config(own_reward_node(cfg), domain=domain)
    name = getattr(reward, "name", type(reward).__name__)
    target = str(cfg.reward.get("_target_", ""))
    if target.startswith("svdd_lightning.rewards") and name not in cfg.domain.rewards and name != "oracle":
        label = reward_label(cfg.reward) if cfg.reward.get("components") else name
        raise ConfigError(f"reward={label} is not a reward of domain '{cfg.domain.name}'; use one of "
                          f"{', '.join(cfg.domain.rewards)}, reward=oracle reward.checkpoint=PATH, or your own "
                          f"class or function with reward._target_=module.name.")
    return reward


def multi_reward_specs(cfg: DictConfig) -> dict[str, str]:
    """{name: spec} of the rewards chosen at once (svdd_lightning/reward_choice.py): a reward of the domain by name
    (spec = name), or a plain function by its import path (``reward=multi reward.components=[qed,my_module.my_score]``:
    spec = the path, name = the function's name)."""
    named = chosen_rewards(cfg.reward)
    if len(named) < 2:
        raise ConfigError(f"reward.components={list(named.values())}: name two or more rewards of domain "
                          f"'{cfg.domain.name}', e.g. reward=[{','.join(list(cfg.domain.rewards)[:2])}]")
    return named


def multi_reward_node(cfg: DictConfig, spec: str) -> DictConfig:
    """The reward config of one component: configs/reward/NAME.yaml, or reward=function's for an import path."""
    from svdd_lightning.paths import resolve_path

    if "." in spec:
        node = OmegaConf.load(resolve_path(Path("configs") / "reward" / "function.yaml"))
        node._target_ = spec
        return node
    if spec == "function":
        raise ConfigError("reward=function among several rewards needs the function's import path: "
                          "reward=multi reward.components=[qed,my_module.my_score].")
    path = resolve_path(Path("configs") / "reward" / f"{spec}.yaml")
    if spec not in cfg.domain.rewards or not path.is_file():
        raise ConfigError(f"reward component '{spec}' is not a reward of domain '{cfg.domain.name}'; use some of "
                          f"{', '.join(cfg.domain.rewards)}, or a function by its import path "
                          f"(reward=multi reward.components=[{cfg.domain.rewards[0]},my_module.my_score]).")
    return OmegaConf.load(path)  # its defaults list and name mapping are left out where it is built (own_reward_node)


def component_config(cfg: DictConfig, node: DictConfig) -> DictConfig:
    """A component's reward node in a config of its own, beside the domain its interpolations read."""
    return OmegaConf.create({"reward": node, "domain": cfg.domain})


def with_component_options(cfg: DictConfig, nodes: dict[str, DictConfig]) -> dict[str, DictConfig]:
    """The components' own configs with the options given on the command line for one of them: Hydra merged the
    chosen files into one node (the last file wins a shared key), so a key whose merged value is not the last
    holder's own was set by the user, and goes to the one component that has it (reward=[instability,net_charge]
    reward.sign=-1: net_charge's). A key that several components have, or none, is refused by name."""
    merged = OmegaConf.to_container(cfg.reward, resolve=False)
    own = {name: OmegaConf.to_container(node, resolve=False) for name, node in nodes.items()}
    for key, value in merged.items():
        if key in ("components", "defaults", *COMBINATION_OPTIONS):
            continue
        if key == "_target_" and value == MULTI_REWARD:  # reward=multi's own class, not a component's
            continue
        holders = [name for name in own if key in own[name]]
        if holders and own[holders[-1]][key] == value:
            continue  # as merged from the files: nothing set by the user
        if len(holders) != 1:
            which = f"several of the chosen rewards ({', '.join(holders)})" if holders else "none of the chosen rewards"
            raise ConfigError(f"reward.{key}={value} is an option of {which} ({', '.join(own)}); with several "
                              f"rewards an option on the command line must belong to exactly one of them (for "
                              f"others, write a reward file with the options you want and choose it).")
        nodes[holders[0]][key] = cfg.reward[key]
    return nodes


def multi_reward_scales(cfg: DictConfig, names: list[str]) -> list[float]:
    """reward.scales when given, else the domain's reward_scale per component (1 where it has none)."""
    given = cfg.reward.get("scales")
    if given is not None:
        if len(given) != len(names):
            raise ConfigError(f"reward.scales={list(given)} needs one scale per component ({', '.join(names)}).")
        return [float(s) for s in given]
    scales = cfg.domain.get("reward_scale") or {}
    return [float(scales.get(n, 1.0)) for n in names]


def build_multi_reward(cfg: DictConfig, domain: Any) -> Any:
    """``reward=[qed,sa]`` / ``reward=multi reward.components=[...]``: each component from its own config, checked
    against the domain like a single reward, scaled by reward.scales or the domain's reward_scale for it."""
    from svdd_lightning.rewards.multi import MultiReward

    specs = multi_reward_specs(cfg)
    nodes = with_component_options(cfg, {name: multi_reward_node(cfg, spec) for name, spec in specs.items()})
    components = {name: build_one_reward(component_config(cfg, node), domain) for name, node in nodes.items()}
    try:
        return MultiReward(components=components, weights=cfg.reward.get("weights"),
                           scales=multi_reward_scales(cfg, list(specs)), combine=cfg.reward.get("combine", "sum"),
                           alpha=float(cfg.reward.get("alpha", 1.0)))
    except ValueError as exc:
        raise ConfigError(f"{exc}") from None


def is_learned_value(cfg: DictConfig) -> bool:
    """Whether the value group's node loads trained weights (value=learned): it has a checkpoint key."""
    return cfg.value is not None and "checkpoint" in cfg.value


def multi_value_checkpoints(cfg: DictConfig) -> dict[str, str] | None:
    """{component: value checkpoint} when a multi reward's learned value is to be assembled from the shipped value
    of each component (values/multi.py): value.checkpoint not given (null) and no shipped value of the combination;
    else None."""
    from svdd_lightning.paths import resolve_path

    if not is_several(cfg.reward) or not is_learned_value(cfg) or cfg.value.checkpoint:
        return None
    if resolve_path(shipped_value_path(cfg.domain.name, "+".join(multi_reward_specs(cfg)))).is_file():
        return None
    specs = multi_reward_specs(cfg)
    # Shipped values are looked up for the domain's own rewards only: a function named like one (my_module.sa)
    # is another reward.
    paths = {name: shipped_value_path(cfg.domain.name, name) for name, spec in specs.items() if spec == name}
    missing = [name for name in specs if name not in paths or not resolve_path(paths[name]).is_file()]
    if missing:
        decoder = cfg.get("method") or cfg.decoder._target_.rsplit(".", 1)[1]
        combined = f"`python train.py stage=value domain={cfg.domain.name} {reward_option(list(specs.values()))}`"
        per_component = [f"`python train.py stage=value domain={cfg.domain.name} reward={name}`, copied to {paths[name]}"
                         for name in missing if name in paths]
        functions = [specs[name] for name in missing if name not in paths]
        raise ConfigError(
            f"decoder={decoder} needs a learned value of the combined reward, and there is none for "
            f"{', '.join(missing)}. Train one on the combination ({combined}, then value.checkpoint=PATH)"
            + (f", or one per missing component ({'; '.join(per_component)})" if per_component else "")
            + (f"; your function {', '.join(functions)} has no shipped value, so only the first way applies"
               if functions else "")
            + "; or use decoder=svdd_pm, which needs no trained value.")
    return paths


def build_multi_value(cfg: DictConfig, checkpoints: dict[str, str], reward: Any, **kwargs: Any) -> Any:
    """One learned value per component (each checked against its own reward), combined as the reward is."""
    from svdd_lightning.rewards.multi import multi_reward_inside
    from svdd_lightning.values.multi import MultiValue

    specs = multi_reward_specs(cfg)
    components, targets = {}, []
    for name, path in checkpoints.items():
        check_value_reward(path, reward_config(component_config(cfg, multi_reward_node(cfg, specs[name]))))
        targets.append(str(read_checkpoint(path).get("svdd", {}).get("value_target", "mean")))
        node = OmegaConf.merge(cfg.value, {"checkpoint": path})
        components[name] = build_with_checkpoint(node, kind="value", domain=cfg.domain.name, prefix="value.", **kwargs)
    combined = multi_reward_inside(reward)
    try:
        return MultiValue(components=components, weights=combined.weights, scales=combined.scales,
                          combine=combined.combine, alpha=combined.alpha, targets=targets)
    except ValueError as exc:
        raise ConfigError(f"{exc} ({', '.join(checkpoints.values())})") from None


def build_value(cfg: DictConfig, *, diffusion: Any, reward: Any) -> Any:
    if cfg.value is None:
        return None
    target = cfg.value._target_
    if "network" in cfg.value and cfg.value.network is None:
        raise ConfigError(f"decoder needs a learned value, and domain '{cfg.domain.name}' has none: pass value.network= "
                          f"and value.checkpoint= (train.py stage=value), or use a decoder that needs no learned value "
                          f"(svdd_pm, best_of_n, smc, svdd_r, or dps with a differentiable reward).")
    kwargs = {name: obj for name, obj in (("reward", reward), ("diffusion", diffusion)) if accepts(target, name)}
    component_checkpoints = multi_value_checkpoints(cfg)
    if component_checkpoints:
        return build_multi_value(cfg, component_checkpoints, reward, **kwargs)
    node = cfg.value
    if is_learned_value(cfg):
        node = OmegaConf.merge(cfg.value, {"checkpoint": value_checkpoint(cfg, reward)})
        check_value_reward(node.checkpoint, reward_config(cfg))
    return build_with_checkpoint(node, kind="value", domain=cfg.domain.name, prefix="value.", **kwargs)


def value_checkpoint(cfg: DictConfig, reward: Any) -> str:
    """value.checkpoint as given, or (null) the shipped value of the domain and of the reward as built: its name is the
    reward's own (``reward.name``: hepg2_motif, qed+sa), so it is the same from the command line, compose() and Python."""
    return str(cfg.value.checkpoint or shipped_value_path(cfg.domain.name, reward.name))


# Objects per network call on CPU for decoder.max_batch=auto. Measured on this project's 2-core CPU
# (DNA SVDD-PM, 32 samples, M = 10, best of 2, freed memory kept): one call on all 320 candidates 15.1 s,
# chunks of 256 15.0 s, 128 13.0 s, 64 12.0 s, 32 12.4 s, 16 14.9 s.
CPU_MAX_BATCH = 64


def share_max_batch(diffusion: Any, max_batch: int | None) -> None:
    """A latent model chunks its own UNet and VAE calls (proposals, decoding) with the decoder's cap, unless
    diffusion.max_batch set one of its own."""
    from svdd_lightning.diffusion.latent import VaeLatents

    if isinstance(diffusion, VaeLatents) and diffusion.max_batch is None:
        diffusion.max_batch = max_batch


def compile_networks(*models: Any) -> None:
    """``torch.compile`` the networks of the denoiser and value in place (decoder.compile=true): shapes are static
    (calls come in whole blocks of rows, svdd_lightning/distinct.py), so each call size compiles once."""
    for model in models:
        network = getattr(model, "network", None)
        if isinstance(network, torch.nn.Module):
            network.compile(dynamic=False)
        components = getattr(model, "components", None)  # a MultiValue's component values
        if isinstance(components, torch.nn.ModuleDict):
            compile_networks(*components.values())


def refinement_options(options: dict) -> tuple[int, float]:
    """(rounds, fraction) popped from a decoder's options (refine_rounds, refine_fraction), checked."""
    rounds, fraction = options.pop("refine_rounds", 0), options.pop("refine_fraction", 0.1)
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 0:
        raise ConfigError(f"decoder.refine_rounds={rounds!r}: a whole number of rounds, 0 for none.")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise ConfigError(f"decoder.refine_fraction={fraction!r}: the share of positions re-masked per round, in "
                          f"(0, 1], e.g. 0.1.")
    return rounds, float(fraction)


def build_decoder(cfg: DictConfig, *, diffusion: Any, reward: Any) -> tuple[Any, Any]:
    """(decoder, value) of the config; DPS follows the reward's own gradient when it has one and builds the
    learned value only otherwise. decoder.max_batch=auto: CPU_MAX_BATCH on CPU, no cap on a GPU."""
    decoder_class = get_class(cfg.decoder._target_)
    value_needed = not (getattr(decoder_class, "value_only_without_reward_gradient", False)
                        and getattr(reward, "is_differentiable", False))
    value = build_value(cfg, diffusion=diffusion, reward=reward) if value_needed else None
    options: dict[str, Any] = {"reward": reward}
    if accepts(cfg.decoder._target_, "value"):
        options["value"] = value
    if cfg.decoder.get("max_batch") == "auto":
        accelerator = str(cfg.trainer.get("accelerator", "auto"))
        on_gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        options["max_batch"] = None if on_gpu else CPU_MAX_BATCH
    from svdd_lightning.decoders.refine import with_refinement

    if "max_batch" in cfg.decoder:
        share_max_batch(diffusion, options.get("max_batch", cfg.decoder.max_batch))
    node = OmegaConf.to_container(cfg.decoder, resolve=True)
    rounds, fraction = refinement_options(node)
    if node.pop("compile", False):
        compile_networks(diffusion, value)
    decoder = with_refinement(instantiate_option_node(node, "decoder", **options), diffusion=diffusion, rounds=rounds,
                              fraction=fraction)
    return decoder, value


def build_logger(cfg: DictConfig, *, output_dir: Path, name: str, config: dict | None = None) -> Any:
    """The ``logger`` group's logger (None for logger=none), writing under ``output_dir``."""
    if cfg.get("logger") is None:
        return None
    return instantiate(cfg.logger, save_dir=str(output_dir), name=name, run_config=config, _convert_="all")


def build_trainer(trainer_cfg: DictConfig, **overrides: Any) -> Any:
    """The ``trainer`` group's Lightning Trainer, with the run's own arguments (callbacks, logger...)."""
    return instantiate(trainer_cfg, **overrides)
