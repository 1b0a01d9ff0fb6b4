"""W&B media of a finished decode: a samples table (text plus the domain's media: images as wandb.Image,
molecules as wandb.Molecule), the guidance trace per denoising step, the run's pictures and its summary
statistics. Called once, on rank zero, after the shards are merged; the pictures themselves are drawn
by the domain (svdd_lightning/domains/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def slice_rows(rewards: np.ndarray, *, top: int = 16, random: int = 16, seed: int = 0) -> list[tuple[str, int]]:
    """Rows for a samples table: the top rewards and a random slice of the rest."""
    order = [int(i) for i in np.argsort(-rewards)]
    chosen = [("top", i) for i in order[:top]]
    rest = order[top:]
    if rest:
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(rest), size=min(random, len(rest)), replace=False)
        chosen += [("random", rest[int(p)]) for p in sorted(picks)]
    return chosen


def molecule_cell(smiles: str):
    """wandb.Molecule with a 3-D embedding when RDKit can make one (some rings cannot be embedded),
    else without; None for an empty SMILES."""
    import wandb

    if not smiles:
        return None
    for embed in (True, False):
        try:
            return wandb.Molecule.from_smiles(smiles, convert_to_3d_and_optimize=embed)
        except (ValueError, RuntimeError):
            continue
    return None


def media_cell(kind: str, payload: Any, caption: str):
    """A W&B cell for one piece of a domain's table media ({'image': uint8 array} or {'molecule': SMILES})."""
    import wandb

    if kind == "molecule":
        return molecule_cell(payload)
    if kind == "image":
        return wandb.Image(payload, caption=caption)
    return payload


def log_samples_table(experiment: Any, *, domain: Any, result: Any, reward_name: str) -> int:
    """A W&B table of the top and a random slice of samples. Returns the number of rows."""
    import wandb

    rows = slice_rows(result.rewards)
    kinds = list(domain.table_media(result.samples, result.texts, rows[0][1])) if rows else []
    table = wandb.Table(columns=["slice", "index", "sample", reward_name, *kinds])
    for which, row in rows:
        media = domain.table_media(result.samples, result.texts, row)
        caption = f"#{result.indices[row]} {reward_name}={result.rewards[row]:.3g}"
        table.add_data(which, result.indices[row], result.texts[row], float(result.rewards[row]),
                       *(media_cell(kind, media.get(kind), caption) for kind in kinds))
    experiment.log({"samples": table})
    return len(table.data)


def mean_trace(traces: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Average per-step traces over batches (each batch's trace has one value per step)."""
    keys = [k for k in (traces[0] if traces else {}) if all(k in t for t in traces)]
    return {k: np.mean([t[k] for t in traces], axis=0).tolist() for k in keys}


def log_guidance_trace(experiment: Any, trace: dict[str, list[float]], steps: list[int]) -> None:
    """Per denoising step, the chosen candidates' values (mean and spread) as W&B line plots."""
    if not trace:
        return
    experiment.define_metric("guidance/step")
    experiment.define_metric("guidance/*", step_metric="guidance/step")
    for i, t in enumerate(steps):
        experiment.log({"guidance/step": i + 1, "guidance/t": t,
                        **{f"guidance/{k}": v[i] for k, v in trace.items() if i < len(v)}})


def log_decode_to_wandb(logger: Any, *, domain: Any, result: Any, steps: list[int], pictures: list[Path]) -> None:
    """Everything W&B shows of a decode run, once, when the logger is a WandbLogger."""
    if logger is None or type(logger).__name__ != "WandbLogger":
        return
    import wandb

    experiment = logger.experiment
    summary = result.summary
    log_samples_table(experiment, domain=domain, result=result, reward_name=summary["reward"])
    log_guidance_trace(experiment, mean_trace(result.traces), steps)
    experiment.log({f"pictures/{p.stem}": wandb.Image(str(p)) for p in pictures if p.suffix == ".png"})
    for k, median in enumerate((summary.get("refine") or {}).get("median_per_round", [])):
        experiment.log({"refine/round": k, "refine/reward_median": median})
    experiment.summary.update({"reward_stats": summary["reward_stats"], "calls": summary["calls"],
                               "naturalness": summary["naturalness"]})


def finish_wandb_run(logger: Any) -> None:
    """Close the decode's W&B run and wait until its file is written whole, so it is complete when decode
    returns: ``finish()`` alone returns before W&B's service writes the file's last rows, and a process that
    shares another's service (an in-process caller, a child of one) does not wait for it at exit."""
    if logger is not None and type(logger).__name__ == "WandbLogger":
        from callbacks.wandb_offline import finish_and_flush

        finish_and_flush(logger.experiment)
