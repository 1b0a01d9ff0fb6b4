"""How image samples are shown and written.

``to_text`` names sample j (its row in ``samples.npy``) ``sample_00012``-style; those names are
the ``sample`` column of ``samples.csv``. ``write_native`` writes

- ``samples.npy``: float32 (N, C, H, W) in [-1, 1], rows in the order of ``samples.csv``;
- ``samples.png``: a grid of the first ``max_grid`` samples, upscaled with nearest-neighbour
  pixels, grey (one channel) or RGB, each tile titled with its reward.

Both files are written under a ``.partial`` name and renamed, so an interrupted run never
leaves a half-written file. The decode loop hands ``to_text`` the samples and ``write_native``
only their names, so ``to_text`` keeps the last samples it saw for ``write_native`` (pass
``samples=`` explicitly to avoid relying on that).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from torch import Tensor
from svdd_lightning.atomic import atomic_path


def _short(value: float) -> str:
    """A tile label: 3 decimals, or 2 significant digits for tiny non-zero values (log-probs near 0)."""
    return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.1e}"


class ImageFormat:
    def __init__(self, *, native_name: str = "samples.npy", grid_name: str = "samples.png", max_grid: int = 100,
                 tile_inches: float = 0.9) -> None:
        if max_grid < 1:
            raise ValueError(f"max_grid must be >= 1, got {max_grid}")
        self.native_name = native_name
        self.grid_name = grid_name
        self.max_grid = int(max_grid)
        self.tile_inches = float(tile_inches)
        self._samples: np.ndarray | None = None

    def to_text(self, samples: Tensor) -> list[str]:
        self._samples = samples.detach().float().cpu().numpy().astype(np.float32)
        return [f"sample_{j:05d}" for j in range(samples.shape[0])]

    def write_native(self, directory: Path, texts: list[str], rewards: list[float], indices: list[int],
                     *, samples: Tensor | np.ndarray | None = None) -> Path:
        if samples is not None:
            array = samples.detach().float().cpu().numpy() if isinstance(samples, Tensor) else np.asarray(samples)
        elif self._samples is not None:
            array = self._samples
        else:
            raise ValueError("write_native needs the samples: call to_text(samples) first or pass samples=")
        array = np.asarray(array, dtype=np.float32)
        if array.shape[0] != len(texts):
            raise ValueError(f"write_native got {array.shape[0]} samples but {len(texts)} names")
        directory = Path(directory)
        path = directory / self.native_name
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array)
        self.write_grid(directory / self.grid_name, array, rewards, indices)
        return path

    def write_grid(self, path: Path, images: np.ndarray, rewards: list[float], indices: list[int]) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(images.shape[0], self.max_grid)
        cols = max(1, min(10, math.ceil(math.sqrt(n))))
        rows = max(1, math.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(cols * self.tile_inches, rows * (self.tile_inches + 0.2)),
                                 squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k >= n:
                continue
            tile = np.clip((images[k] + 1.0) / 2.0, 0.0, 1.0)
            if tile.shape[0] == 1:
                ax.imshow(tile[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            else:
                ax.imshow(tile.transpose(1, 2, 0), interpolation="nearest")
            label = _short(rewards[k]) if k < len(rewards) else ""
            ax.set_title(f"#{indices[k]} {label}" if k < len(indices) else label, fontsize=6, pad=2)
        shown = f"first {n} of {images.shape[0]}" if n < images.shape[0] else f"{n}"
        fig.suptitle(f"samples ({shown}), title: index reward", fontsize=7)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        return path
