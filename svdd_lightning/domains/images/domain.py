"""Images (B, C, H, W) in [-1, 1]: rewards over objects see uint8 (H, W, C) arrays; samples are written
as ``samples.npy`` (float32, rows in the order of ``samples.csv``) and a ``samples.png`` grid, and
named ``sample_00012``-style in ``samples.csv``. Naturalness: naturalness.py.

Both files are written under a ``.partial`` name and renamed, so an interrupted run never leaves a
half-written file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from svdd_lightning.atomic import atomic_path
from svdd_lightning.domains.base import Domain
from svdd_lightning.domains.images.naturalness import ImageNaturalness, images_to_uint8


def to_uint8(images: Tensor) -> np.ndarray:
    """Images (B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C) in [0, 255] (round((x + 1) / 2 * 255),
    clipped; NaN -> 0), the layout Pillow and users' image rewards expect."""
    pixels = images_to_uint8(torch.nan_to_num(images.detach().float().cpu(), nan=-1.0))
    return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))


def _short(value: float) -> str:
    """A tile label: 3 decimals, or 2 significant digits for tiny non-zero values (log-probs near 0)."""
    return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.1e}"


class ImageDomain(Domain):
    name = "images"

    def __init__(self, *, classifier: str | None = None,
                 naturalness_reference: str | None = None, confidence_threshold: float = 0.9,
                 native_name: str = "samples.npy", grid_name: str = "samples.png", max_grid: int = 100,
                 tile_inches: float = 0.9) -> None:
        """
        Args:
            classifier, naturalness_reference, confidence_threshold: the independent judge and the real
                images of the naturalness metrics (see naturalness.py).
            native_name, grid_name: the NPY file and the PNG grid of the samples.
            max_grid: at most this many samples in the grid; tile_inches: the size of one tile.
        """
        if max_grid < 1:
            raise ValueError(f"max_grid must be >= 1, got {max_grid}")
        self.judge = ImageNaturalness(classifier=classifier, reference=naturalness_reference,
                                      confidence_threshold=confidence_threshold)
        self.native_name = native_name
        self.grid_name = grid_name
        self.max_grid = int(max_grid)
        self.tile_inches = float(tile_inches)

    # -- objects <-> tensors ------------------------------------------------------------ #

    def to_objects(self, samples: Tensor) -> list[np.ndarray]:
        if samples.dim() != 4 or samples.shape[1] not in (1, 3):
            raise ValueError(f"images are (B, C, H, W) with C = 1 or 3, got {tuple(samples.shape)}")
        return list(to_uint8(samples))

    def from_objects(self, objects: Sequence[np.ndarray]) -> Tensor:
        pixels = torch.from_numpy(np.stack([np.asarray(o, dtype=np.uint8) for o in objects]).astype(np.float32))
        return (pixels / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()

    def object_key(self, obj: np.ndarray) -> bytes:
        return obj.tobytes()

    # -- text and files ----------------------------------------------------------------- #

    def to_text(self, samples: Tensor) -> list[str]:
        return [f"sample_{j:05d}" for j in range(samples.shape[0])]

    def describe(self, sample: Tensor) -> str:
        return f"an image of shape {tuple(sample.shape[1:])}"

    def write_native(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                     indices: list[int]) -> list[Path]:
        array = samples.detach().float().cpu().numpy().astype(np.float32)
        if array.shape[0] != len(texts):
            raise ValueError(f"write_native got {array.shape[0]} samples but {len(texts)} names")
        path = Path(directory) / self.native_name
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array)
        return [path, self.write_grid(Path(directory) / self.grid_name, array, rewards, indices)]

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

    # -- evidence ----------------------------------------------------------------------- #

    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        return self.judge(samples, diffusion=diffusion, seed=seed)

    def write_reference(self, datamodule: Any, directory: Path) -> list[Path]:
        return [self.judge.write_reference(datamodule, directory)]

    def table_media(self, samples: Tensor, texts: list[str], row: int) -> dict[str, Any]:
        pixels = to_uint8(samples[row:row + 1])[0]
        return {"image": pixels[..., 0] if pixels.shape[-1] == 1 else pixels}
