"""Images: the embedded default is scikit-learn's handwritten digits (``load_digits``: 1,797
real 8x8 grey-level digits in [0, 16], 10 classes), served as a LightningDataModule.

A user points ``data.path`` at their own images instead:

- a ``.npy`` array (N, H, W) or (N, C, H, W) of pixel values (no labels);
- a ``.npz`` archive with an ``images`` array as above and optionally a ``labels`` array (N,)
  of integer classes;
- a folder of image files (PNG, JPEG, BMP, GIF, TIFF, WebP) read with Pillow. Files directly in
  the folder are unlabelled; a folder of class sub-folders (``root/<class>/*.png``, as
  torchvision's ImageFolder) gives labels 0..K-1 in sorted sub-folder order.

Pixel scale: integer-valued data whose maximum is at most 16 is read as the digits' [0, 16]
scale, data up to 255 as 8-bit [0, 255], floats at most 1 as [0, 1]; image files are 8-bit.
``max_value`` overrides the guess. Images are scaled to [-1, 1] (the range the Gaussian model
and its ``clip_sample`` assume) and resized (bilinear, antialiased) to ``image_size`` when
given and different. Unlabelled images carry the label -1.

Every bad input raises :class:`svdd_lightning.errors.DataError` (or ``ConfigError`` for an
option that cannot work) naming the file and what to do.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from svdd_lightning.errors import ConfigError, DataError
from svdd_lightning.paths import REPO_ROOT, resolve_path
from svdd_lightning.ranges import AtLeastOne, Probability

log = logging.getLogger("svdd_lightning.data")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
UNLABELLED = -1


# --------------------------------------------------------------------------------------- #
# Reading
# --------------------------------------------------------------------------------------- #


def load_default_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's digits: images (1797, 8, 8) float in [0, 16], labels (1797,), names."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64), [str(c) for c in digits.target_names]


def _read_array(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"data file {path} could not be read as a NumPy {path.suffix} file ({type(exc).__name__}: {exc}). "
            f"It is truncated, corrupt, or holds Python objects; save a plain numeric array with "
            f"numpy.save(path, images) (or numpy.savez(path, images=..., labels=...)) and retry."
        ) from exc
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        if "images" not in loaded.files:
            raise DataError(
                f"data file {path} has no 'images' array (it holds {loaded.files}). Save it with "
                f"numpy.savez(path, images=IMAGES, labels=LABELS), labels being optional."
            )
        images = loaded["images"]
        labels = loaded["labels"] if "labels" in loaded.files else None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"data file {path}: 'labels' has shape {labels.shape} but 'images' holds {images.shape[0]} "
                f"images; labels must be a 1-D array with one integer class per image."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels))
                    and np.all(labels == np.round(labels))):
                raise DataError(
                    f"data file {path}: 'labels' must hold integer classes (0, 1, ...), got dtype {labels.dtype}. "
                    f"Convert them with labels.astype(int) and save again."
                )
        labels = labels.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise DataError(f"data file {path}: 'labels' holds negative classes; classes must be 0, 1, ...")
    return images, labels


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_folder(folder: Path, channels: int, image_size: int | None) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    from PIL import Image, UnidentifiedImageError

    files = _image_files(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and _image_files(d))
    if files and class_dirs:
        raise DataError(
            f"image folder {folder} mixes image files with class sub-folders ({', '.join(d.name for d in class_dirs[:3])}"
            f"...). Put every image in a class sub-folder (labelled) or all directly in the folder (unlabelled)."
        )
    if not files and not class_dirs:
        raise DataError(
            f"image folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)}), neither directly nor in "
            f"class sub-folders. Point data.path at a folder of images, a .npy array or a .npz archive."
        )
    entries: list[tuple[Path, int]] = [(f, UNLABELLED) for f in files]
    names = None
    if class_dirs:
        names = [d.name for d in class_dirs]
        entries = [(f, k) for k, d in enumerate(class_dirs) for f in _image_files(d)]
    mode = "L" if channels == 1 else "RGB"
    arrays, sizes = [], set()
    for f, _ in entries:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                if image_size is not None and im.size != (image_size, image_size):
                    im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.float32)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(
                f"image file {f} could not be read with Pillow ({type(exc).__name__}: {exc}). Remove or replace "
                f"the file, then retry."
            ) from exc
        sizes.add(a.shape[:2])
        arrays.append(a if a.ndim == 3 else a[..., None])
    if len(sizes) > 1:
        raise DataError(
            f"image folder {folder} holds images of different sizes {sorted(sizes)[:4]}; set data.image_size=S "
            f"(the image.yaml domain sets it from domain.image_size) to resize them all to S x S."
        )
    images = np.stack(arrays).transpose(0, 3, 1, 2)  # (N, C, H, W)
    labels = np.asarray([k for _, k in entries], dtype=np.int64) if class_dirs else None
    return images, labels, names


def pixel_scale(images: np.ndarray, source: str | Path) -> float:
    """The maximum of the pixel scale of ``images``: 1 (floats <= 1), 16 (digits) or 255."""
    top = float(images.max()) if images.size else 0.0
    integral = np.issubdtype(images.dtype, np.integer) or bool(np.all(images == np.round(images)))
    if top > 255:
        raise DataError(
            f"data file {source} holds pixel values up to {top:g}; accepted scales are [0, 1], [0, 16] (the digits) "
            f"and [0, 255]. Rescale the array, or pass data.max_value=M to map [0, M] to [-1, 1]."
        )
    if top > 16:
        return 255.0
    if integral or top > 1:
        return 16.0
    return 1.0


def to_unit_range(images: np.ndarray, max_value: float) -> Tensor:
    """[0, max_value] -> [-1, 1] float32."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return (x / max_value * 2.0 - 1.0).clamp_(-1.0, 1.0)


# --------------------------------------------------------------------------------------- #
# DataModule
# --------------------------------------------------------------------------------------- #


class _ImageDataset(Dataset):
    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"images": self.images[i], "labels": self.labels[i]}


class DigitsDataModule(L.LightningDataModule):
    """Images in [-1, 1] of shape (C, H, W); batches ``{"images": float (B, C, H, W),
    "labels": long (B,)}`` (label -1 = unlabelled).

    After :meth:`setup`: ``train_images``/``val_images``, ``train_labels``/``val_labels``,
    ``num_classes`` (None when unlabelled), ``class_names``, ``data_path`` (None for the
    embedded digits) and ``stats``. The train/validation split is a seeded permutation, so it
    is the same on every run and every rank.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        channels: int = 1,
        image_size: int | None = None,
        max_value: float | None = None,
        batch_size: AtLeastOne = 128,
        val_fraction: Probability = 0.1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels}.")
        if image_size is not None and (int(image_size) < 2 or int(image_size) % 2):
            raise ConfigError(
                f"data.image_size must be an even size >= 2 (the UNet halves it once) or null, got {image_size}."
            )
        if int(batch_size) <= 0:
            raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size}.")
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1) (e.g. 0.1), got {val_fraction}.")
        if max_value is not None and not float(max_value) > 0:
            raise ConfigError(f"data.max_value must be a positive number or null (guess the scale), got {max_value}.")
        if int(num_workers) < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}.")
        self.path = None if path is None else str(path)
        self.channels = int(channels)
        self.image_size = None if image_size is None else int(image_size)
        self.max_value = None if max_value is None else float(max_value)
        self.batch_size = int(batch_size)
        self.val_fraction = float(val_fraction)
        self.num_workers = int(num_workers)
        self.seed = int(seed)

        self.data_path: Path | None = None
        self.stats: dict[str, Any] | None = None
        self.num_classes: int | None = None
        self.class_names: list[str] | None = None
        self.train_images: Tensor | None = None
        self.val_images: Tensor | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    # -- reading ------------------------------------------------------------------------- #

    def _load(self) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str, float | None]:
        """(images (N, C?, H, W), labels or None, class names, source, scale or None to guess)."""
        if self.path is None:
            images, labels, names = load_default_digits()
            return images, labels, names, "scikit-learn load_digits", 16.0
        path = resolve_path(self.path)
        self.data_path = path
        if path.is_dir():
            images, labels, names = _read_folder(path, self.channels, self.image_size)
            return images, labels, names, str(path), 255.0
        if not path.exists():
            raise DataError(
                f"data file {self.path} does not exist (looked in the working directory and {REPO_ROOT}). Check "
                f"data.path: a .npy array (N, H, W) or (N, C, H, W), a .npz with 'images' (and 'labels'), or an "
                f"image folder."
            )
        if path.suffix.lower() not in ARRAY_SUFFIXES:
            raise DataError(
                f"data file {path} has the extension {path.suffix or '(none)'!r}; image data must be a .npy array "
                f"(N, H, W) or (N, C, H, W), a .npz archive with 'images' (and optional 'labels'), or a folder of "
                f"image files. Convert it, or point data.path at such a file or folder."
            )
        images, labels = _read_array(path)
        return images, labels, None, str(path), None

    def _check(self, images: np.ndarray, source: str) -> np.ndarray:
        """Validate and return (N, C, H, W) float32 (not yet scaled)."""
        if not (np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_):
            raise DataError(f"data file {source} holds {images.dtype} values, not numbers; save a numeric array.")
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise DataError(
                f"data file {source} holds an array of shape {images.shape}; images must be (N, H, W) or "
                f"(N, C, H, W) with C = {self.channels}. Reshape it (e.g. array.reshape(-1, 8, 8)) and save again."
            )
        if images.shape[0] == 0:
            raise DataError(f"data file {source} holds no images (shape {images.shape}); point data.path at real data.")
        if images.shape[1] != self.channels:
            hint = ("if the channel axis is last, save array.transpose(0, 3, 1, 2)"
                    if images.shape[-1] == self.channels else f"set domain.channels={images.shape[1]}")
            raise DataError(
                f"data file {source} holds images of shape {images.shape[1:]} (C, H, W), but {self.channels} "
                f"channel(s) are configured; {hint}."
            )
        images = images.astype(np.float32, copy=False)
        if not np.all(np.isfinite(images)):
            raise DataError(f"data file {source} holds NaN or infinite pixel values; fix or remove those images.")
        if images.min() < 0:
            raise DataError(
                f"data file {source} holds negative pixel values (min {images.min():g}); pixels must lie in "
                f"[0, 1], [0, 16] or [0, 255]. Shift the data to start at 0 (or pass data.max_value for [0, M])."
            )
        return images

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is not None:
            return
        raw, labels, names, source, scale = self._load()
        raw_checked = self._check(np.asarray(raw), source)
        scale = self.max_value or scale or pixel_scale(raw_checked, source)
        images = to_unit_range(raw_checked, scale)
        h, w = images.shape[-2:]
        if self.image_size is not None and (h, w) != (self.image_size, self.image_size):
            log.info("data %s: resizing %dx%d images to %dx%d", source, h, w, self.image_size, self.image_size)
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   antialias=True, align_corners=False).clamp_(-1.0, 1.0)
        h, w = images.shape[-2:]
        if h % 2 or w % 2:
            raise DataError(
                f"data file {source} holds {h}x{w} images; the image UNet needs an even height and width. Set "
                f"domain.image_size to an even size (e.g. {h + 1}) to resize them."
            )
        n = images.shape[0]
        if labels is None:
            label_tensor = torch.full((n,), UNLABELLED, dtype=torch.long)
        else:
            label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64))
            self.num_classes = int(label_tensor.max()) + 1
            self.class_names = names or [str(k) for k in range(self.num_classes)]

        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=gen)
        n_val = min(n - 1, max(1, int(round(self.val_fraction * n)))) if self.val_fraction > 0 and n > 1 else 0
        val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
        self.train_images = images[train_idx].contiguous()
        self.val_images = images[val_idx].contiguous()
        self.train_labels = label_tensor[train_idx].contiguous()
        self.val_labels = label_tensor[val_idx].contiguous()
        self.stats = {"images": n, "train": len(train_idx), "val": len(val_idx), "shape": tuple(images.shape[1:]),
                      "pixel_scale": scale, "labelled": labels is not None, "source": source}
        log.info("data %s: %d images %s (train %d, val %d), pixel scale [0, %g]", source, n,
                 tuple(images.shape[1:]), len(train_idx), len(val_idx), scale)

    # -- loaders ------------------------------------------------------------------------- #

    def _loader(self, images: Tensor | None, labels: Tensor | None, train: bool) -> DataLoader:
        if images is None or labels is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        return DataLoader(
            _ImageDataset(images, labels),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and images.shape[0] > self.batch_size,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_images, self.train_labels, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_images, self.val_labels, train=False)
