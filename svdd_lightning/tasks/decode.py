"""What `python decode.py` runs: a composed config in, the decode's output folder (summary.json, samples.csv,
media, W&B) out. The decoding itself is svdd_lightning.decode (the Python API); this module builds its inputs
from the config and writes through the callbacks (callbacks/, shipped in the same wheel)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, open_dict

from callbacks.decode_outputs import write_decode_outputs, write_summary
from callbacks.media import finish_wandb_run, log_decode_to_wandb
from callbacks.reward_histogram import RewardHistogramCallback
from callbacks.shard_writer import ShardWriter
from svdd_lightning.api import decode
from svdd_lightning.build import build_decoder, build_diffusion, build_domain, build_logger, build_reward, build_trainer
from svdd_lightning.cli import friendly_errors, is_launcher_process, quiet_lightning, start_process
from svdd_lightning.diffusion.latent import read_prompts
from svdd_lightning.inpainting import seeds_from_options
from svdd_lightning.options import check_config
from svdd_lightning.loggers import is_offline_wandb, wandb_sync_hint
from svdd_lightning.paths import CONFIG_DIR, resolve_path
from svdd_lightning.rewards.guard import GuardedReward
from svdd_lightning.rewards.latent import reward_of_states
from svdd_lightning.runs import prepare_output_dir


def load_reference(cfg: DictConfig, reward_name: str) -> np.ndarray | None:
    path = resolve_path(Path(cfg.domain.reference_dir) / f"{reward_name}.json") if cfg.domain.reference_dir else None
    return np.asarray(json.loads(path.read_text())["rewards"], dtype=float) if path and path.is_file() else None


@friendly_errors
def decode_command(cfg: DictConfig) -> None:
    """What `python decode.py` runs on the config Hydra composed: one decode, or one per prompt of a prompt file."""
    prompts = read_prompts(cfg.prompt) if cfg.get("prompt") else []
    if len(prompts) <= 1:
        if prompts:
            with open_dict(cfg):
                cfg.prompt = prompts[0]
        run_decode(cfg)
        return
    # A file of prompts: one decode per prompt (a latent model is conditioned on one prompt), each in its own
    # folder with its own summary.json, and an index of the folders.
    base = Path(cfg.output_dir)
    index = []
    for k, prompt in enumerate(prompts):
        run_cfg = cfg.copy()
        with open_dict(run_cfg):
            run_cfg.prompt = prompt
            run_cfg.output_dir = str(base / f"prompt_{k:03d}")
        summary = run_decode(run_cfg)
        if summary is not None:
            index.append({"prompt": prompt, "output_dir": run_cfg.output_dir, **summary["reward_stats"]})
    if is_launcher_process():
        write_summary(base / "prompts.json", {"prompts": index})
        print(f"{len(prompts)} prompts decoded; index: {base / 'prompts.json'}")


def run_decode(cfg: DictConfig) -> dict | None:
    """Decode with a composed config (read from its values alone: no HydraConfig); returns summary.json's content
    on rank zero (None on other ranks). benchmark.py calls this in-process."""
    quiet_lightning()
    check_config(cfg, entry="decode")  # every option, before anything is built or written
    output_dir = Path(cfg.output_dir)
    domain = build_domain(cfg)
    guarded = GuardedReward(reward=build_reward(cfg, domain), floor=cfg.get("reward_floor"),
                            describe=lambda x: domain.describe(x.detach().cpu()))
    diffusion = build_diffusion(cfg, domain)
    reward = reward_of_states(guarded, diffusion)  # a latent model's rewards score decoded images
    init = seeds_from_options(cfg.get("init"), domain=domain, diffusion=diffusion)  # None: from the prior
    decoder, value = build_decoder(cfg, diffusion=diffusion, reward=reward)
    # Only now, with every input built and checked, is output_dir made: a refused option leaves nothing behind.
    done = prepare_output_dir(cfg, output_dir)
    if done and is_launcher_process():
        print(f"resuming: {len(done)} batch(es) already decoded in {output_dir / '.shards'} are kept; decoding the rest")
    reference = load_reference(cfg, reward.name)
    run_config = {"domain": cfg.domain.name, "reward": reward.name, "decoder": cfg.get("method") or "custom",
                  "num_samples": cfg.num_samples, "seed": cfg.seed, "steps": cfg.steps, **decoder.settings()}
    logger = build_logger(cfg, output_dir=output_dir, name=output_dir.name, config=run_config)
    offline = is_offline_wandb(logger)  # read now: wandb's own run may change the environment later
    writer = ShardWriter(directory=output_dir / ".shards")
    earlier = writer.collect()["rewards"].numpy() if done else None
    histogram = RewardHistogramCallback(reward_name=reward.name, reference=reference, earlier=earlier)
    trainer = build_trainer(cfg.trainer, logger=logger if logger is not None else False,
                            callbacks=[writer, histogram], inference_mode=False)
    result = decode(diffusion=diffusion, reward=reward, decoder=decoder, domain=domain, value=value,
                    num_samples=cfg.num_samples, seed=cfg.seed, batch_size=cfg.batch_size,
                    naturalness=cfg.compute_naturalness, trainer=trainer, collect=writer.collect, skip=frozenset(done),
                    names={"domain": cfg.domain.name, "decoder": run_config["decoder"], "steps": cfg.steps},
                    reference=reference, init=init)
    if result is None:  # not rank zero
        return None
    files = write_decode_outputs(output_dir, result=result, domain=domain, reward_units=reward.units,
                                 reference=reference, init=init)
    log_decode_to_wandb(logger, domain=domain, result=result, steps=(init or diffusion).timesteps(), pictures=files)
    if cfg.reference_out:
        path = Path(cfg.reference_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = result.summary
        write_summary(path, {**{k: summary[k] for k in ("domain", "reward", "decoder", "seed", "steps", "num_samples")},
                             **summary["reward_stats"], "rewards": result.rewards.tolist()})
    shutil.rmtree(output_dir / ".shards", ignore_errors=True)
    print_report(result.summary, output_dir, [f.name for f in files], offline)
    finish_wandb_run(logger)
    return result.summary


def print_report(summary: dict, output_dir: Path, extra_files: list[str], wandb_offline: bool) -> None:
    stats = summary["reward_stats"]
    rows = [(summary["decoder"], stats["median"], stats["q90"])]
    if summary["reference"] is not None:
        ref = summary["reference"]
        rows.append((f"pre-trained (shipped, n={ref['num_samples']})", ref["median"], ref["q90"]))
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{summary['domain']} / reward {summary['reward']}: {summary['num_samples']} samples, "
          f"M={summary['num_candidates']}, {summary['steps']} steps, {summary['wall_seconds']:.1f} s")
    print(f"{'method':<{width}}{'median':>10}{'q90':>10}")
    for name, med, q90 in rows:
        print(f"{name:<{width}}{med:>10.3f}{q90:>10.3f}")
    if summary["naturalness"]:
        print("naturalness: " + ", ".join(f"{k}={v:.3f}" for k, v in summary["naturalness"].items()))
    print(f"outputs: {output_dir}/ ({', '.join(['summary.json', 'samples.csv', *extra_files])})")
    if wandb_offline:
        print(f"W&B run saved offline; upload it with: {wandb_sync_hint(output_dir)}")


# The command line: `python decode.py` in the checkout and the console script `svdd-decode` of an installed package.
main = hydra.main(config_path=str(CONFIG_DIR), config_name="decode", version_base="1.3")(decode_command)


def cli() -> None:
    start_process(float32_matmul_precision="high")
    main()
