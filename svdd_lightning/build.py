"""Building objects from Hydra config nodes. ``checkpoint`` keys are not constructor arguments:
they are popped here and the weights loaded after the object is built, with checked metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from svdd_lightning.checkpoints import check_value_reward, load_state, read_checkpoint
from svdd_lightning.cli import accepts
from svdd_lightning.errors import ConfigError


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
    from svdd_lightning.rewards.build import reward_from_config

    if str(cfg.reward.get("_target_", "")) == MULTI_REWARD:
        return build_multi_reward(cfg, domain)
    reward = reward_from_config(cfg.reward, domain=domain)
    name = getattr(reward, "name", type(reward).__name__)
    target = str(cfg.reward.get("_target_", ""))
    if target.startswith("svdd_lightning.rewards") and name not in cfg.domain.rewards and name != "oracle":
        choice = HydraConfig.get().runtime.choices.get("reward", name) if HydraConfig.initialized() else name
        raise ConfigError(f"reward={choice} is not a reward of domain '{cfg.domain.name}'; use one of "
                          f"{', '.join(cfg.domain.rewards)}, reward=oracle reward.checkpoint=PATH, or your own "
                          f"class or function with reward._target_=module.name.")
    return reward


MULTI_REWARD = "svdd_lightning.rewards.multi.MultiReward"


def multi_reward_components(cfg: DictConfig) -> dict[str, DictConfig]:
    """{name: reward config} of ``reward.components``: a reward of the domain by name (configs/reward/NAME.yaml),
    or a plain function by its import path (``reward=[qed,my_module.my_score]``: reward=function's options,
    named after the function)."""
    from svdd_lightning.paths import resolve_path

    names = [str(n) for n in (cfg.reward.get("components") or [])]
    if len(names) < 2:
        raise ConfigError(f"reward.components={names}: name two or more rewards of domain '{cfg.domain.name}', e.g. "
                          f"reward=[{','.join(list(cfg.domain.rewards)[:2])}]")
    nodes = {}
    for name in names:
        if "." in name:
            node = OmegaConf.load(resolve_path(Path("configs") / "reward" / "function.yaml"))
            node._target_ = name
            name = name.rsplit(".", 1)[1]
        else:
            path = resolve_path(Path("configs") / "reward" / f"{name}.yaml")
            if name not in cfg.domain.rewards or not path.is_file():
                raise ConfigError(f"reward component '{name}' is not a reward of domain '{cfg.domain.name}'; use some "
                                  f"of {', '.join(cfg.domain.rewards)}, or a function by its import path "
                                  f"(my_module.my_score).")
            node = OmegaConf.load(path)
        if name in nodes:
            raise ConfigError(f"reward.components names '{name}' twice; give each component once.")
        nodes[name] = node
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

    nodes = multi_reward_components(cfg)
    components = {name: build_reward(OmegaConf.create({"reward": node, "domain": cfg.domain}), domain)
                  for name, node in nodes.items()}
    try:
        return MultiReward(components=components, weights=cfg.reward.get("weights"),
                           scales=multi_reward_scales(cfg, list(nodes)), combine=cfg.reward.get("combine", "sum"),
                           alpha=float(cfg.reward.get("alpha", 1.0)))
    except ValueError as exc:
        raise ConfigError(f"{exc}") from None


def multi_value_checkpoints(cfg: DictConfig) -> dict[str, str] | None:
    """{component: value checkpoint} when a multi reward's learned value is to be assembled from one shipped value
    per component (values/multi.py): value.checkpoint is left at its default, which no file holds; else None."""
    from svdd_lightning.paths import resolve_path

    if str(cfg.reward.get("_target_", "")) != MULTI_REWARD or not cfg.value.get("checkpoint"):
        return None
    default = f"checkpoints/{cfg.domain.name}/value_multi.ckpt"
    if str(cfg.value.checkpoint) != default or resolve_path(default).is_file():
        return None
    paths = {name: f"checkpoints/{cfg.domain.name}/value_{name}.ckpt" for name in multi_reward_components(cfg)}
    missing = [name for name, path in paths.items() if not resolve_path(path).is_file()]
    if missing:
        decoder = HydraConfig.get().runtime.choices.get("decoder") if HydraConfig.initialized() else None
        raise ConfigError(f"decoder={decoder or cfg.decoder._target_.rsplit('.', 1)[1]} needs a learned value of the "
                          f"combined reward: either one per component ({', '.join(paths.values())}; missing for "
                          f"{', '.join(missing)}: `python train.py stage=value domain={cfg.domain.name} "
                          f"reward={missing[0]}`, copied there), or one trained on the "
                          f"combination (`python train.py stage=value reward=[{','.join(paths)}]`, then "
                          f"value.checkpoint=PATH); or use decoder=svdd_pm, which needs no trained value.")
    return paths


def build_multi_value(cfg: DictConfig, checkpoints: dict[str, str], reward: Any, **kwargs: Any) -> Any:
    """One learned value per component (each checked against its own reward), combined as the reward is."""
    from svdd_lightning.values.multi import MultiValue

    nodes = multi_reward_components(cfg)
    components = {}
    for name, path in checkpoints.items():
        check_value_reward(path, OmegaConf.to_container(nodes[name], resolve=True))
        node = OmegaConf.merge(cfg.value, {"checkpoint": path})
        components[name] = build_with_checkpoint(node, kind="value", domain=cfg.domain.name, prefix="value.", **kwargs)
    combined = getattr(reward, "inner", reward)  # the MultiReward inside the NaN/raise guard (rewards/guard.py)
    return MultiValue(components=components, weights=combined.weights, scales=combined.scales,
                      combine=combined.combine, alpha=combined.alpha)


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
    if cfg.value.get("checkpoint"):
        check_value_reward(cfg.value.checkpoint, OmegaConf.to_container(cfg.reward, resolve=True))
    return build_with_checkpoint(cfg.value, kind="value", domain=cfg.domain.name, prefix="value.", **kwargs)


# Objects per network call on CPU for decoder.max_batch=auto. Measured on this project's 2-core CPU
# (DNA SVDD-PM, 32 samples, M = 10, best of 2, freed memory kept): one call on all 320 candidates 15.1 s,
# chunks of 256 15.0 s, 128 13.0 s, 64 12.0 s, 32 12.4 s, 16 14.9 s.
CPU_MAX_BATCH = 64


def share_max_batch(diffusion: Any, max_batch: int | None) -> None:
    """A latent model chunks its own UNet and VAE calls (proposals, decoding) with the decoder's cap, unless
    diffusion.max_batch set one of its own."""
    if hasattr(diffusion, "max_batch") and diffusion.max_batch is None:
        diffusion.max_batch = max_batch


def compile_networks(*models: Any) -> None:
    """``torch.compile`` the networks of the denoiser and value in place (decoder.compile=true): shapes are static
    (calls come in whole blocks of rows, svdd_lightning/distinct.py), so each call size compiles once."""
    for model in models:
        network = getattr(model, "network", None)
        if isinstance(network, torch.nn.Module):
            network.compile(dynamic=False)


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
    decoder = with_refinement(instantiate(node, **options), diffusion=diffusion, rounds=rounds, fraction=fraction)
    return decoder, value


def build_logger(cfg: DictConfig, *, output_dir: Path, name: str, config: dict | None = None) -> Any:
    """The ``logger`` group's logger (None for logger=none), writing under ``output_dir``."""
    if cfg.get("logger") is None:
        return None
    return instantiate(cfg.logger, save_dir=str(output_dir), name=name, run_config=config, _convert_="all")


def build_trainer(trainer_cfg: DictConfig, **overrides: Any) -> Any:
    """The ``trainer`` group's Lightning Trainer, with the run's own arguments (callbacks, logger...)."""
    return instantiate(trainer_cfg, **overrides)
