"""Pictures and W&B media of decoded samples, per kind of object.

Local PNGs are always written (matplotlib / RDKit drawing); W&B tables and line plots only when a
W&B logger is active. Called on rank zero after the shards are merged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from svdd_lightning.atomic import atomic_path


def plot_position_frequencies(path: Path, tokens: torch.Tensor, alphabet: str, *, title: str) -> Path:
    """Per-position nucleotide frequencies of the samples, as stacked bars (a sequence-logo-like view)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    onehot = torch.nn.functional.one_hot(tokens.long().clamp(max=len(alphabet) - 1), len(alphabet)).float()
    freqs = onehot.mean(dim=0).numpy()  # (L, V)
    positions = np.arange(1, freqs.shape[0] + 1)
    colors = {"A": "tab:green", "C": "tab:blue", "G": "tab:orange", "T": "tab:red", "U": "tab:red"}
    width = min(16.0, max(6.4, 0.06 * freqs.shape[0]))
    fig, ax = plt.subplots(figsize=(width, 3.2), dpi=110)
    bottom = np.zeros(freqs.shape[0])
    for j, letter in enumerate(alphabet):
        ax.bar(positions, freqs[:, j], bottom=bottom, width=1.0, color=colors.get(letter), label=letter, linewidth=0)
        bottom += freqs[:, j]
    ax.set_xlim(0.5, freqs.shape[0] + 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel("position (nt)")
    ax.set_ylabel("frequency in samples")
    ax.set_title(title)
    ax.legend(ncol=len(alphabet), loc="upper right", fontsize=8, framealpha=0.8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def draw_molecule_grid(path: Path, smiles: list[str], rewards: list[float], *, reward_name: str,
                       top: int = 16) -> Path | None:
    """The top molecules by reward, drawn with RDKit, labelled with their reward."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    order = np.argsort(-np.asarray(rewards))
    mols, legends = [], []
    for i in order:
        mol = Chem.MolFromSmiles(smiles[i]) if smiles[i] else None
        if mol is None:
            continue
        mols.append(mol)
        legends.append(f"#{i} {reward_name}={rewards[i]:.3f}")
        if len(mols) == top:
            break
    if not mols:
        return None
    image = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(260, 220), legends=legends)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def write_pictures(output_dir: Path, *, fmt: Any, samples: torch.Tensor, texts: list[str], rewards: np.ndarray,
                   reward_name: str, decoder_name: str) -> list[Path]:
    """Domain pictures beside reward_hist.png: position frequencies (DNA/RNA), a molecule grid."""
    written: list[Path] = []
    alphabet = getattr(fmt, "alphabet", None)
    if alphabet is not None:
        written.append(plot_position_frequencies(
            output_dir / "samples_positions.png", samples, alphabet,
            title=f"Per-position nucleotide frequencies of {len(texts)} samples ({decoder_name}, {reward_name})"))
    grid_name = getattr(fmt, "grid_name", None)
    if grid_name and (output_dir / grid_name).is_file():
        written.append(output_dir / grid_name)  # the image grid the format already wrote
    if getattr(fmt, "native_name", "").endswith(".smi"):
        grid = draw_molecule_grid(output_dir / "samples_grid.png", texts, rewards.tolist(), reward_name=reward_name)
        if grid is not None:
            written.append(grid)
    return written


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


def log_samples_table(experiment: Any, *, fmt: Any, samples: torch.Tensor, texts: list[str], indices: list[int],
                      rewards: np.ndarray, reward_name: str) -> int:
    """A W&B table of the top and a random slice of samples; molecules as wandb.Molecule, images as
    wandb.Image, sequences as strings. Returns the number of rows."""
    import wandb

    is_molecule = getattr(fmt, "native_name", "").endswith(".smi")
    is_image = samples.dtype.is_floating_point and samples.dim() == 4
    columns = ["slice", "index", "sample", reward_name]
    if is_molecule:
        columns.append("molecule")
    if is_image:
        columns.append("image")
    table = wandb.Table(columns=columns)
    for which, row in slice_rows(rewards):
        cells: list[Any] = [which, indices[row], texts[row], float(rewards[row])]
        if is_molecule:
            cells.append(molecule_cell(texts[row]))
        if is_image:
            pixels = ((samples[row].float().clamp(-1, 1) + 1) * 127.5).round().byte().squeeze(0).numpy()
            cells.append(wandb.Image(pixels, caption=f"#{indices[row]} {reward_name}={rewards[row]:.3g}"))
        table.add_data(*cells)
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
