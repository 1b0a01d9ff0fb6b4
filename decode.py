"""Decode high-reward samples from a pre-trained diffusion model (SVDD and baselines).

    python decode.py [domain=dna] [reward=NAME] [decoder=svdd_pm|svdd_mc|best_of_n|pretrained]
                     [num_samples=N] [batch_size=B] [seed=S] [steps=T] [decoder.num_candidates=M]
                     [decoder.alpha=A] [output_dir=DIR] [logger=wandb|csv|none] [trainer.devices=K]

See README.md and ../shared/INTERFACE.md for every option and the files written.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from callbacks.media import log_guidance_trace, log_samples_table, mean_trace, write_pictures
from callbacks.decode_outputs import plot_reward_histogram, reward_stats, write_samples_csv, write_summary
from callbacks.reward_histogram import RewardHistogramCallback
from callbacks.shard_writer import ShardWriter, read_shards
from datamodules.seeds import SeedDataModule
from svdd_lightning.build import build_with_checkpoint
from svdd_lightning.checkpoints import check_value_reward, check_vocabulary, resolve_path
from svdd_lightning.cli import (accepts, friendly_errors, is_launcher_process, make_trainer, quiet_lightning,
                                save_config, writable_output_dir)
from svdd_lightning.errors import ConfigError
from svdd_lightning.rewards.guard import GuardedReward
from svdd_lightning.loggers import build_logger, wandb_configured, wandb_sync_hint
from svdd_lightning.modules.decoding import DecodingModule


def load_reference(cfg: DictConfig, reward_name: str) -> np.ndarray | None:
    path = resolve_path(Path(cfg.domain.reference_dir) / f"{reward_name}.json")
    if not path.is_file():
        return None
    return np.asarray(json.loads(path.read_text())["rewards"], dtype=float)


def build_value(cfg: DictConfig, *, diffusion, reward):
    if cfg.value is None:
        return None
    target = cfg.value._target_
    kwargs = {name: obj for name, obj in (("reward", reward), ("diffusion", diffusion)) if accepts(target, name)}
    if cfg.value.get("checkpoint"):
        check_value_reward(cfg.value.checkpoint, OmegaConf.to_container(cfg.reward, resolve=True))
    return build_with_checkpoint(cfg.value, kind="value", domain=cfg.domain.name, prefix="value.", **kwargs)


def check_options(cfg: DictConfig) -> None:
    for key in ("num_samples", "batch_size", "steps"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ConfigError(f"{key}={cfg[key]} is not a positive integer; pass e.g. {key}=64.")


# Objects per network call on CPU for decoder.max_batch=auto. Measured on this project's 2-core CPU
# (DNA SVDD-PM, 32 samples, M = 10, best of 2, freed memory kept): one call on all 320 candidates 15.1 s,
# chunks of 256 15.0 s, 128 13.0 s, 64 12.0 s, 32 12.4 s, 16 14.9 s.
CPU_MAX_BATCH = 64


def resolve_max_batch(cfg: DictConfig) -> None:
    """decoder.max_batch=auto: CPU_MAX_BATCH on CPU, no cap on a GPU (where bigger calls are faster)."""
    if cfg.decoder.get("max_batch") != "auto":
        return
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    on_gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    with open_dict(cfg):
        cfg.decoder.max_batch = None if on_gpu else CPU_MAX_BATCH


RESULT_FILES = ("summary.json", "samples.csv")
FINGERPRINT = "run.json"


def run_fingerprint(cfg: DictConfig) -> dict:
    """What decides the samples: everything but where outputs go, logging and the devices."""
    skip = {"output_dir", "logger", "trainer", "hydra", "overwrite", "compute_naturalness", "reference_out"}
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in cfg if key not in skip}


def prepare_output_dir(cfg: DictConfig, output_dir: Path) -> set[int]:
    """Create ``output_dir`` (checked writable), refuse to overwrite a finished run unless
    ``overwrite=true``, and return the batches an interrupted run with the same settings already
    wrote (resumed, not decoded again)."""
    writable_output_dir(output_dir)
    shard_dir = output_dir / ".shards"
    fingerprint = run_fingerprint(cfg)
    finished = [name for name in RESULT_FILES if (output_dir / name).exists()]
    if is_launcher_process():
        if finished and not cfg.overwrite:
            raise ConfigError(f"output_dir={output_dir} already holds a finished run ({', '.join(finished)}); choose "
                              f"another output_dir=DIR, or pass overwrite=true to replace it.")
        stored = shard_dir / FINGERPRINT
        if shard_dir.exists() and (cfg.overwrite or not stored.exists()
                                   or json.loads(stored.read_text()) != fingerprint):
            if not cfg.overwrite and any(shard_dir.glob("batch-*.pt")):
                raise ConfigError(f"output_dir={output_dir} holds partial results of an interrupted run with different "
                                  f"settings ({shard_dir}); rerun with the same settings to resume it, choose another "
                                  f"output_dir=DIR, or pass overwrite=true to start over.")
            shutil.rmtree(shard_dir)
        shard_dir.mkdir(exist_ok=True)
        write_summary(stored, fingerprint)
        save_config(cfg, output_dir / "config.yaml")
    return ShardWriter(directory=shard_dir).done_starts()


@hydra.main(config_path="configs", config_name="decode", version_base="1.3")
@friendly_errors
def main(cfg: DictConfig) -> None:
    run_decode(cfg)


def run_decode(cfg: DictConfig) -> dict | None:
    """Decode with a composed config (Hydra's runtime choices set); returns summary.json's content
    on rank zero (None on other ranks). benchmark.py calls this in-process."""
    quiet_lightning()
    check_options(cfg)
    output_dir = Path(cfg.output_dir)
    done = prepare_output_dir(cfg, output_dir)
    if done and is_launcher_process():
        print(f"resuming: {len(done)} batch(es) already decoded in {output_dir / '.shards'} are kept; decoding the rest")
    reward_choice = HydraConfig.get().runtime.choices.get("reward", "custom")
    decoder_choice = HydraConfig.get().runtime.choices.get("decoder", "custom")

    reward = instantiate(cfg.reward)
    reward_name = getattr(reward, "name", type(reward).__name__)
    ours = type(reward).__module__.startswith("svdd_lightning.rewards")
    if ours and reward_name not in cfg.domain.rewards and reward_name != "oracle":
        raise ConfigError(f"reward={reward_choice} is not a reward of domain '{cfg.domain.name}'; use one of "
                          f"{', '.join(cfg.domain.rewards)}, reward=oracle reward.checkpoint=PATH, or your own "
                          f"class with reward._target_=module.Class.")
    fmt = instantiate(cfg.format)
    reward = GuardedReward(reward=reward, floor=cfg.get("reward_floor"),
                           describe=lambda x: fmt.to_text(x.detach().cpu())[0])
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=cfg.domain.name, prefix="diffusion.")
    if cfg.domain.get("vocab") and cfg.diffusion.get("checkpoint"):
        from svdd_lightning.chem import SelfiesVocabulary

        check_vocabulary(cfg.diffusion.checkpoint, SelfiesVocabulary.load(cfg.domain.vocab).tokens, cfg.domain.vocab)
    decoder_class = get_class(cfg.decoder._target_)
    # DPS follows the reward's own gradient when it has one and needs the learned value only otherwise.
    value_needed = not (getattr(decoder_class, "value_only_without_reward_gradient", False)
                        and getattr(reward, "is_differentiable", False))
    value = build_value(cfg, diffusion=diffusion, reward=reward) if value_needed else None
    decoder_kwargs = {"reward": reward}
    if accepts(cfg.decoder._target_, "value"):
        decoder_kwargs["value"] = value
    resolve_max_batch(cfg)
    decoder = instantiate(cfg.decoder, **decoder_kwargs)
    reference = load_reference(cfg, reward_name)

    run_config = {
        "domain": cfg.domain.name, "reward": reward_name, "decoder": decoder_choice,
        "num_samples": cfg.num_samples, "seed": cfg.seed, "steps": cfg.steps, **decoder.settings(),
    }
    wandb_offline = cfg.logger.kind == "wandb" and not wandb_configured()  # build_logger then sets offline mode
    logger = build_logger(cfg.logger.kind, output_dir=output_dir, project=cfg.logger.get("project", "svdd-lightning"),
                          name=output_dir.name, config=run_config)
    shard_dir = output_dir / ".shards"
    writer = ShardWriter(directory=shard_dir)
    earlier = read_shards(writer.shard_paths())["rewards"].numpy() if done else None
    histogram = RewardHistogramCallback(reward_name=reward_name, reference=reference, earlier=earlier)
    trainer = make_trainer(cfg.trainer, logger=logger if logger is not None else False,
                           callbacks=[writer, histogram], inference_mode=False)
    module = DecodingModule(diffusion=diffusion, decoder=decoder, reward=reward, value=value, seed=cfg.seed)
    seeds = SeedDataModule(num_samples=cfg.num_samples, batch_size=cfg.batch_size, skip=done)

    # Samples decoded by this process (a resumed run times only the batches it decodes now).
    num_decoded = sum(len(batch) for batch in seeds.predict_dataloader().dataset)
    start = time.perf_counter()
    try:
        if len(seeds.predict_dataloader()) > 0:
            trainer.predict(module, datamodule=seeds, return_predictions=False)
    finally:
        if hasattr(reward.inner, "scorer"):
            reward.inner.scorer.close()  # the reward's process pool, if it made one
    trainer.strategy.barrier()
    wall = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None

    merged = read_shards(writer.shard_paths())
    indices = merged["index"].tolist()
    rewards = merged["rewards"].numpy()
    if not np.isfinite(rewards).all():
        raise ConfigError(f"the reward '{reward_name}' returned NaN or inf for some samples; a reward must return "
                          f"a finite floor for invalid objects (see svdd_lightning/rewards/base.py).")
    texts = fmt.to_text(merged["samples"])
    nfe = {k: int(sum(b[k] for b in merged["nfe"])) for k in ("denoiser", "value", "reward")}

    naturalness = {}
    if cfg.compute_naturalness:
        naturalness = instantiate(cfg.naturalness)(merged["samples"], diffusion=module.diffusion, seed=cfg.seed)

    settings = decoder.settings()
    summary = {
        "domain": cfg.domain.name,
        "reward": reward_name,
        "decoder": decoder_choice,
        "num_samples": len(indices),
        "num_candidates": settings.get("num_candidates", 1),
        "alpha": settings.get("alpha"),
        "steps": cfg.steps,
        "seed": cfg.seed,
        "reward_stats": reward_stats(rewards),
        "nfe": nfe,
        "nfe_per_sample": {k: v / len(indices) for k, v in nfe.items()},
        # What one sample cost: network and reward calls (objects sent through each, per sample)
        # and wall time, so that methods can be compared at the compute a user will pay.
        "calls_per_sample": {**{k: v / len(indices) for k, v in nfe.items()},
                             "total": sum(nfe.values()) / len(indices)},
        "wall_seconds": round(wall, 3),
        "wall_seconds_per_sample": round(wall / max(num_decoded, 1), 6),
        "naturalness": naturalness,
        "decoder_settings": settings,
        # Memoised/pooled CPU oracles (rewards/pool.py): rank zero's counts.
        "reward_cache": reward.inner.cache_stats() if hasattr(reward.inner, "cache_stats") else None,
        # Non-finite rewards replaced by reward_floor (null: such a reward stops the run instead).
        "reward_floor": {"value": reward.floor, "replaced": reward.replaced} if reward.floor is not None else None,
        "devices": trainer.world_size,
        "reference": None if reference is None else {"median": float(np.median(reference)),
                                                     "q90": float(np.quantile(reference, 0.9)),
                                                     "num_samples": int(reference.size)},
    }
    write_summary(output_dir / "summary.json", summary)
    write_samples_csv(output_dir / "samples.csv", indices, texts, rewards.tolist())
    native = fmt.write_native(output_dir, texts, rewards.tolist(), indices)
    units = getattr(reward, "units", "")
    plot_reward_histogram(output_dir / "reward_hist.png", rewards,
                          reward_name=f"{reward_name} ({units})" if units else reward_name,
                          decoder_name=decoder_choice, reference=reference)
    pictures = write_pictures(output_dir, fmt=fmt, samples=merged["samples"], texts=texts, rewards=rewards,
                              reward_name=reward_name, decoder_name=decoder_choice)
    if logger is not None and type(logger).__name__ == "WandbLogger":
        import wandb

        experiment = logger.experiment
        log_samples_table(experiment, fmt=fmt, samples=merged["samples"], texts=texts, indices=indices,
                          rewards=rewards, reward_name=reward_name)
        log_guidance_trace(experiment, mean_trace(merged["trace"]), diffusion.timesteps())
        experiment.log({f"pictures/{p.stem}": wandb.Image(str(p)) for p in [output_dir / "reward_hist.png", *pictures]})
        experiment.summary.update({"reward_stats": summary["reward_stats"], "nfe": nfe, "naturalness": naturalness})
    if cfg.reference_out:
        ref_path = Path(cfg.reference_out)
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        write_summary(ref_path, {"domain": cfg.domain.name, "reward": reward_name, "decoder": decoder_choice,
                                 "seed": cfg.seed, "steps": cfg.steps, "num_samples": len(indices),
                                 **reward_stats(rewards), "rewards": rewards.tolist()})
    shutil.rmtree(shard_dir, ignore_errors=True)
    print_report(summary, output_dir, [native.name, *(p.name for p in pictures)], wandb_offline)
    return summary


def print_report(summary: dict, output_dir: Path, extra_files: list[str], wandb_offline: bool) -> None:
    stats = summary["reward_stats"]
    rows = [(summary["decoder"], stats["median"], stats["q90"])]
    if summary["reference"] is not None:
        ref = summary["reference"]
        rows.append((f"pre-trained (shipped, n={ref['num_samples']})", ref["median"], ref["q90"]))
    width = max(len(r[0]) for r in rows) + 2
    print()
    print(f"{summary['domain']} / reward {summary['reward']}: {summary['num_samples']} samples, "
          f"M={summary['num_candidates']}, {summary['steps']} steps, {summary['wall_seconds']:.1f} s")
    print(f"{'method':<{width}}{'median':>10}{'q90':>10}")
    for name, med, q90 in rows:
        print(f"{name:<{width}}{med:>10.3f}{q90:>10.3f}")
    nat = summary["naturalness"]
    if nat:
        print("naturalness: " + ", ".join(f"{k}={v:.3f}" for k, v in nat.items()))
    files = ", ".join(["summary.json", "samples.csv", *extra_files, "reward_hist.png"])
    print(f"outputs: {output_dir}/ ({files})")
    if wandb_offline:
        print(f"W&B run saved offline; upload it with: {wandb_sync_hint(output_dir)}")


if __name__ == "__main__":
    from svdd_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # see svdd_lightning/allocator.py: page faults were 60% of CPU decode time
    torch.set_float32_matmul_precision("high")
    main()
