"""Reading images: scikit-learn's digits, a .npy array, a .npz archive (``images``, optional ``labels``) or a folder
of image files read with Pillow (files directly in it: unlabelled; class sub-folders: labels 0..K-1 in sorted
order), then the checks and the pixel scale. Pure functions of a path and options; every bad file is a DataError
naming it and what to do."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from svdd_lightning.errors import data_error

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
ARRAY_SUFFIXES = (".npy", ".npz")
UNLABELLED = -1


def load_default_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's digits: images (1797, 8, 8) float in [0, 16], labels (1797,), names."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64), [str(c) for c in digits.target_names]


def read_array(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A .npy array (no labels) or a .npz archive's ``images`` and optional integer ``labels``."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise data_error(path, f"could not be read as a NumPy {path.suffix} file ({type(exc).__name__}: {exc}).",
                         "It is truncated, corrupt, or holds Python objects; save a plain numeric array with "
                         "numpy.save(path, images) (or numpy.savez(path, images=..., labels=...)) and retry.") from exc
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        if "images" not in loaded.files:
            raise data_error(path, f"has no 'images' array (it holds {loaded.files}).",
                             "Save it with numpy.savez(path, images=IMAGES, labels=LABELS), labels being optional.")
        images = loaded["images"]
        labels = loaded["labels"] if "labels" in loaded.files else None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise data_error(path, f": 'labels' has shape {labels.shape} but 'images' holds {images.shape[0]} images;",
                             "labels must be a 1-D array with one integer class per image.")
        if not np.issubdtype(labels.dtype, np.integer):
            if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels))
                    and np.all(labels == np.round(labels))):
                raise data_error(path, f": 'labels' must hold integer classes (0, 1, ...), got dtype {labels.dtype}.",
                                 "Convert them with labels.astype(int) and save again.")
        labels = labels.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise data_error(path, ": 'labels' holds negative classes;", "classes must be 0, 1, ...")
    return images, labels


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_folder(
    folder: Path, channels: int, image_size: int | None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """(images (N, H, W, C) -> (N, C, H, W) float in [0, 255], labels or None, class names or None); every image
    converted to ``channels`` and resized to ``image_size`` when given."""
    from PIL import Image, UnidentifiedImageError

    files = image_files(folder)
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and image_files(d))
    if files and class_dirs:
        raise data_error(folder, f"mixes image files with class sub-folders ({', '.join(d.name for d in class_dirs[:3])}"
                                 f"...).", "Put every image in a class sub-folder (labelled) or all directly in the "
                                           "folder (unlabelled).", kind="image folder")
    if not files and not class_dirs:
        raise data_error(folder, f"holds no image files ({', '.join(IMAGE_SUFFIXES)}), neither directly nor in "
                                 f"class sub-folders.", "Point data.path at a folder of images, a .npy array or a "
                                                        ".npz archive.", kind="image folder")
    entries: list[tuple[Path, int]] = [(f, UNLABELLED) for f in files]
    names = None
    if class_dirs:
        names = [d.name for d in class_dirs]
        entries = [(f, k) for k, d in enumerate(class_dirs) for f in image_files(d)]
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
            raise data_error(f, f"could not be read with Pillow ({type(exc).__name__}: {exc}).",
                             "Remove or replace the file, then retry.", kind="image file") from exc
        sizes.add(a.shape[:2])
        arrays.append(a if a.ndim == 3 else a[..., None])
    if len(sizes) > 1:
        raise data_error(folder, f"holds images of different sizes {sorted(sizes)[:4]};",
                         "set data.image_size=S (the image.yaml domain sets it from domain.image_size) to resize "
                         "them all to S x S.", kind="image folder")
    images = np.stack(arrays).transpose(0, 3, 1, 2)  # (N, C, H, W)
    labels = np.asarray([k for _, k in entries], dtype=np.int64) if class_dirs else None
    return images, labels, names


def read_images(
    path: Path, *, channels: int, image_size: int | None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None, float | None]:
    """(images, labels or None, class names or None, pixel scale or None to guess) of an image folder, a .npy
    array or a .npz archive (``path`` exists)."""
    if path.is_dir():
        images, labels, names = read_folder(path, channels, image_size)
        return images, labels, names, 255.0
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise data_error(path, f"has the extension {path.suffix or '(none)'!r}; image data must be a .npy array "
                               f"(N, H, W) or (N, C, H, W), a .npz archive with 'images' (and optional 'labels'), or "
                               f"a folder of image files.", "Convert it, or point data.path at such a file or folder.")
    images, labels = read_array(path)
    return images, labels, None, None


def check_images(images: np.ndarray, source: str, channels: int) -> np.ndarray:
    """Validate and return (N, C, H, W) float32 (not yet scaled)."""
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == np.bool_):
        raise data_error(source, f"holds {images.dtype} values, not numbers;", "save a numeric array.")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise data_error(source, f"holds an array of shape {images.shape}; images must be (N, H, W) or (N, C, H, W) "
                                 f"with C = {channels}.", "Reshape it (e.g. array.reshape(-1, 8, 8)) and save again.")
    if images.shape[0] == 0:
        raise data_error(source, f"holds no images (shape {images.shape});", "point data.path at real data.")
    if images.shape[1] != channels:
        hint = ("if the channel axis is last, save array.transpose(0, 3, 1, 2)"
                if images.shape[-1] == channels else f"set domain.channels={images.shape[1]}")
        raise data_error(source, f"holds images of shape {images.shape[1:]} (C, H, W), but {channels} channel(s) "
                                 f"are configured;", f"{hint}.")
    images = images.astype(np.float32, copy=False)
    if not np.all(np.isfinite(images)):
        raise data_error(source, "holds NaN or infinite pixel values;", "fix or remove those images.")
    if images.min() < 0:
        raise data_error(source, f"holds negative pixel values (min {images.min():g}); pixels must lie in [0, 1], "
                                 f"[0, 16] or [0, 255].", "Shift the data to start at 0 (or pass data.max_value for "
                                                          "[0, M]).")
    return images


def pixel_scale(images: np.ndarray, source: str | Path) -> float:
    """The maximum of the pixel scale of ``images``: 1 (floats <= 1), 16 (digits) or 255."""
    top = float(images.max()) if images.size else 0.0
    integral = np.issubdtype(images.dtype, np.integer) or bool(np.all(images == np.round(images)))
    if top > 255:
        raise data_error(source, f"holds pixel values up to {top:g}; accepted scales are [0, 1], [0, 16] (the "
                                 f"digits) and [0, 255].", "Rescale the array, or pass data.max_value=M to map "
                                                           "[0, M] to [-1, 1].")
    if top > 16:
        return 255.0
    if integral or top > 1:
        return 16.0
    return 1.0


def to_unit_range(images: np.ndarray, max_value: float) -> Tensor:
    """[0, max_value] -> [-1, 1] float32."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return (x / max_value * 2.0 - 1.0).clamp_(-1.0, 1.0)
