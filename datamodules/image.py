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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.base import TableDataModule, check_positive, check_val_fraction, check_workers, seeded_split
from datamodules.image_files import (ARRAY_SUFFIXES, IMAGE_SUFFIXES, UNLABELLED, check_images, load_default_digits,
                                     pixel_scale, read_images, to_unit_range)
from svdd_lightning.errors import ConfigError, data_error
from svdd_lightning.ranges import AtLeastOne, Probability

# The readers moved to datamodules/image_files.py; these names are still imported from here.
__all__ = ["ARRAY_SUFFIXES", "IMAGE_SUFFIXES", "UNLABELLED", "DigitsDataModule", "load_default_digits", "pixel_scale",
           "to_unit_range"]

log = logging.getLogger("svdd_lightning.data")


class DigitsDataModule(TableDataModule):
    """Images in [-1, 1] of shape (C, H, W); batches ``{"images": float (B, C, H, W),
    "labels": long (B,)}`` (label -1 = unlabelled).

    After :meth:`setup`: ``train_images``/``val_images``, ``train_labels``/``val_labels``,
    ``num_classes`` (None when unlabelled), ``class_names``, ``data_path`` (None for the
    embedded digits) and ``stats``. The train/validation split is a seeded permutation, so it
    is the same on every run and every rank.
    """

    COLUMNS = ("images", "labels")
    DROP_LAST = True

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
        if channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {channels}.")
        if image_size is not None and (int(image_size) < 2 or int(image_size) % 2):
            raise ConfigError(
                f"data.image_size must be an even size >= 2 (the UNet halves it once) or null, got {image_size}."
            )
        check_positive("batch_size", batch_size)
        check_val_fraction(val_fraction, example=0.1)
        if max_value is not None and not float(max_value) > 0:
            raise ConfigError(f"data.max_value must be a positive number or null (guess the scale), got {max_value}.")
        check_workers(num_workers)
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.path = None if path is None else str(path)
        self.channels = int(channels)
        self.image_size = None if image_size is None else int(image_size)
        self.max_value = None if max_value is None else float(max_value)
        self.val_fraction = float(val_fraction)

        self.data_path: Path | None = None
        self.stats: dict[str, Any] | None = None
        self.num_classes: int | None = None
        self.class_names: list[str] | None = None
        self.train_images: Tensor | None = None
        self.val_images: Tensor | None = None
        self.train_labels: Tensor | None = None
        self.val_labels: Tensor | None = None

    def _load(self) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, str, float | None]:
        """(images (N, C?, H, W), labels or None, class names, source, scale or None to guess)."""
        if self.path is None:
            images, labels, names = load_default_digits()
            return images, labels, names, "scikit-learn load_digits", 16.0
        path = self._locate(self.path, folders=True,
                            fix="Check data.path: a .npy array (N, H, W) or (N, C, H, W), a .npz with 'images' (and "
                                "'labels'), or an image folder.")
        self.data_path = path
        images, labels, names, scale = read_images(path, channels=self.channels, image_size=self.image_size)
        return images, labels, names, str(path), scale

    def build(self) -> None:
        raw, labels, names, source, scale = self._load()
        raw_checked = check_images(np.asarray(raw), source, self.channels)
        scale = self.max_value or scale or pixel_scale(raw_checked, source)
        images = to_unit_range(raw_checked, scale)
        h, w = images.shape[-2:]
        if self.image_size is not None and (h, w) != (self.image_size, self.image_size):
            log.info("data %s: resizing %dx%d images to %dx%d", source, h, w, self.image_size, self.image_size)
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   antialias=True, align_corners=False).clamp_(-1.0, 1.0)
        h, w = images.shape[-2:]
        if h % 2 or w % 2:
            raise data_error(source, f"holds {h}x{w} images; the image UNet needs an even height and width.",
                             f"Set domain.image_size to an even size (e.g. {h + 1}) to resize them.")
        n = images.shape[0]
        if labels is None:
            label_tensor = torch.full((n,), UNLABELLED, dtype=torch.long)
        else:
            label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64))
            self.num_classes = int(label_tensor.max()) + 1
            self.class_names = names or [str(k) for k in range(self.num_classes)]

        train_idx, val_idx = seeded_split(n, self.val_fraction, self.seed)
        self.train_images = images[train_idx].contiguous()
        self.val_images = images[val_idx].contiguous()
        self.train_labels = label_tensor[train_idx].contiguous()
        self.val_labels = label_tensor[val_idx].contiguous()
        self.stats = {"images": n, "train": len(train_idx), "val": len(val_idx), "shape": tuple(images.shape[1:]),
                      "pixel_scale": scale, "labelled": labels is not None, "source": source}
        log.info("data %s: %d images %s (train %d, val %d), pixel scale [0, %g]", source, n,
                 tuple(images.shape[1:]), len(train_idx), len(val_idx), scale)
