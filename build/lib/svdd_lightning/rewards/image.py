"""Image rewards.

``compressibility`` (the paper's image reward): minus the size of the image saved as a JPEG
at quality 95 with Pillow, in kilobytes (1 kB = 1000 bytes), i.e. reward = -bytes / 1000 as
in the paper's tables (higher = more compressible). Images in [-1, 1] are mapped to 8-bit
pixels (round((x + 1) / 2 * 255), clipped; NaN -> 0) and saved as grey ("L") for one channel
or RGB for three. Baseline JPEG with the standard Huffman tables, so even a blank 8x8 image
costs about 333 bytes of headers and tables; real 8x8 digits take 378-404 bytes and uniform
noise about 395, so on digits the reward spans about -0.40 to -0.33. Runs on the CPU
(not differentiable); every image has a size, so there is no invalid floor. About
30 ms per 1,000 8x8 images.

``digit``: log p(target_class | x) under a digit classifier trained by
``python train.py stage=oracle domain=image`` (nats, <= 0; differentiable, so DPS can use it).
"""

from __future__ import annotations

import functools
import io
from typing import ClassVar

import numpy as np
from torch import Tensor

from svdd_lightning.checkpoints import resolve_path
from svdd_lightning.errors import CheckpointError
from svdd_lightning.rewards.objects import ObjectReward, score_each
from svdd_lightning.rewards.oracle import OracleReward, read_oracle_metadata


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> int:
    """Size in bytes of one uint8 (H, W, C) image saved as JPEG by Pillow."""
    from PIL import Image

    channels = image.shape[-1]
    pil = Image.fromarray(image[..., 0], mode="L") if channels == 1 else Image.fromarray(image, mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=quality)
    return buffer.tell()


class CompressibilityReward(ObjectReward):
    """-(JPEG size in kB) of uint8 (H, W, C) images, C in {1, 3} (the image domain's objects)."""

    name: ClassVar[str] = "compressibility"
    units: ClassVar[str] = "-kB of JPEG q95"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, *, quality: int = 95, workers: int | None = None, cache: bool = True) -> None:
        """``workers``: processes encoding in parallel (null = all available cores, 0 = in this
        process; small images are encoded in-process whatever this says, where a pool only costs);
        ``cache``: encode each distinct uint8 image once per run (see rewards/objects.py)."""
        if not 1 <= int(quality) <= 100:
            raise ValueError(f"quality must be a JPEG quality in 1..100 (the paper uses 95), got {quality}")
        self.quality = int(quality)
        super().__init__(fn=functools.partial(score_each, functools.partial(jpeg_bytes, quality=self.quality)),
                         floor=None, workers=workers, cache=cache)

    def worth_pooling(self, objects) -> bool:
        # An 8x8 digit encodes in microseconds: only images of 64x64 pixels or more go to the pool.
        return bool(objects) and objects[0].shape[0] * objects[0].shape[1] >= 4096

    def to_reward_units(self, scores: Tensor) -> Tensor:
        return -scores / 1000.0


class DigitReward(OracleReward):
    """log p(target_class | x) (nats) under the digit classifier of ``train.py stage=oracle
    domain=image``. Differentiable in the pixels."""

    name: ClassVar[str] = "digit"
    units: ClassVar[str] = "nats, log p(class)"
    is_differentiable: ClassVar[bool] = True

    def __init__(self, *, checkpoint: str, target_class: int = 0, domain: str | None = "image") -> None:
        task = read_oracle_metadata(checkpoint)["task"]
        if task != "classification":
            raise CheckpointError(
                f"checkpoint {resolve_path(checkpoint)} is a {task} oracle; the digit reward needs the digit "
                f"classifier written by `python train.py stage=oracle domain=image`."
            )
        super().__init__(checkpoint=checkpoint, target_class=target_class, domain=domain)
