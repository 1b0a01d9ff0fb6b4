"""Files every decode run leaves in ``output_dir`` (INTERFACE.md): summary.json, samples.csv,
the domain's own format, reward_hist.png and the domain's pictures (sequences: samples_positions.png and the
samples_logo.png sequence logo, restricted to the redesigned positions after an inpainting decode). Each file
is written to a ``.partial`` name and renamed, so an interrupted run never leaves a half-written output behind."""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
from svdd_lightning.atomic import atomic_path, atomic_write_text


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")


def write_samples_csv(path: Path, indices: list[int], texts: list[str], rewards: list[float],
                      components: dict[str, np.ndarray] | None = None) -> None:
    """index, sample, reward, and ``reward_<name>`` per component of a multi-objective reward."""
    components = components or {}
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "sample", "reward", *(f"reward_{name}" for name in components)])
        for row, (i, text, r) in enumerate(zip(indices, texts, rewards)):
            writer.writerow([i, text, f"{r:.6g}", *(f"{float(v[row]):.6g}" for v in components.values())])


def plot_pareto(path: Path, components: dict[str, np.ndarray], *, decoder_name: str) -> None:
    """The first two components of a multi-objective run against each other, the non-dominated samples (the
    Pareto front, both maximised) joined, and the medians marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (name_x, xs), (name_y, ys) = list(components.items())[:2]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(xs, ys, s=12, alpha=0.6, label=decoder_name)
    front = pareto_front(xs, ys)
    ax.plot(xs[front], ys[front], "r-", lw=1.2, label="Pareto front")
    ax.plot([np.median(xs)], [np.median(ys)], "k*", ms=12, label=f"{decoder_name} median")
    ax.set_xlabel(name_x)
    ax.set_ylabel(name_y)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def pareto_front(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both coordinates (ties kept), sorted by x."""
    order = np.lexsort((-ys, -xs))  # x descending, then y descending
    front, best_y = [], -np.inf
    for i in order:
        if ys[i] > best_y:
            front.append(i)
            best_y = ys[i]
    return np.array(sorted(front, key=lambda i: xs[i]), dtype=int)


def plot_reward_histogram(path: Path, rewards: np.ndarray, *, reward_name: str, decoder_name: str,
                          reference: np.ndarray | None, reference_label: str = "pre-trained (shipped reference)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    pool = rewards if reference is None else np.concatenate([rewards, reference])
    bins = np.histogram_bin_edges(pool, bins=30)
    if reference is not None:
        ax.hist(reference, bins=bins, alpha=0.5, color="tab:gray", density=True,
                label=f"{reference_label}, median {np.median(reference):.3g}")
    ax.hist(rewards, bins=bins, alpha=0.7, color="tab:blue", density=True,
            label=f"{decoder_name}, median {np.median(rewards):.3g}")
    ax.axvline(np.median(rewards), color="tab:blue", linestyle="--", linewidth=1)
    ax.set_xlabel(f"reward: {reward_name}")
    ax.set_ylabel("density (fraction of samples per unit reward)")
    ax.set_title(f"Reward of {len(rewards)} samples: {decoder_name}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def redesigned_positions(init: Any, indices: list[int], seed: int) -> Any:
    """(B, L) bool: the positions each sample (global ``indices``) was free to change, from the start plan the
    decode ran with (svdd_lightning/starts.py; the same plan gives the same starts); None without one."""
    if init is None or not indices:
        return None
    import torch

    return init.start(torch.as_tensor(indices, dtype=torch.long), seed=seed).redesignable_positions()


def takes_keyword(method: Any, name: str) -> bool:
    """Whether ``method`` accepts keyword ``name`` (a domain written before the keyword existed does not)."""
    parameters = inspect.signature(method).parameters
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def write_decode_outputs(output_dir: Path, *, result: Any, domain: Any, reward_units: str = "",
                         reference: np.ndarray | None = None, init: Any = None) -> list[Path]:
    """summary.json, samples.csv, the domain's native files, reward_hist.png and the domain's pictures.
    ``init``: the start plan of an inpainting decode (its redesigned positions go to the domain's pictures).
    Returns the files beside summary.json and samples.csv."""
    summary = result.summary
    rewards = result.rewards.tolist()
    write_summary(output_dir / "summary.json", summary)
    components = getattr(result, "components", None)
    write_samples_csv(output_dir / "samples.csv", result.indices, result.texts, rewards, components)
    native = domain.write_native(output_dir, samples=result.samples, texts=result.texts, rewards=rewards,
                                 indices=result.indices)
    reward_name = summary["reward"]
    histogram = output_dir / "reward_hist.png"
    plot_reward_histogram(histogram, result.rewards, reward_name=f"{reward_name} ({reward_units})" if reward_units
                          else reward_name, decoder_name=summary["decoder"], reference=reference)
    redesigned = redesigned_positions(init, result.indices, int(summary.get("seed", 0)))
    given = redesigned is not None and takes_keyword(domain.draw_media, "redesigned")
    media = {"redesigned": redesigned} if given else {}
    pictures = domain.draw_media(output_dir, samples=result.samples, texts=result.texts, rewards=rewards,
                                 reward_name=reward_name, decoder_name=summary["decoder"], **media)
    extra = []
    if components is not None and len(components) >= 2:
        extra.append(output_dir / "pareto.png")
        plot_pareto(extra[0], components, decoder_name=summary["decoder"])
    return [*native, histogram, *pictures, *extra]
