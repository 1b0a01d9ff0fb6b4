"""``aesthetic``: the LAION aesthetic predictor's score of RGB images, from local files.

The predictor (the paper's image reward beside compressibility) is a head on CLIP image embeddings:
the embedding of a CLIP vision model with projection (``CLIPVisionModelWithProjection``), L2-normalised,
through either a linear layer (LAION's first predictor: keys ``weight``/``bias``) or the "improved
aesthetic predictor" MLP (keys ``layers.0 .. layers.7``: Linear 768-1024, Dropout, Linear 1024-128,
Dropout, Linear 128-64, Dropout, Linear 64-16, Linear 16-1, with no activation between, as released).
Both layouts are read from the head file's keys, so heads of other widths load too.

Nothing is downloaded: ``path`` is a local folder in ``save_pretrained`` layout (e.g. openai's
clip-vit-large-patch14, the ViT-L/14 LAION trained on) and ``head`` a local ``.pth`` state dict, read
with ``weights_only=True``. Images in [-1, 1] are resized (bicubic) and centre-cropped to the vision
model's input size and normalised with CLIP's mean and standard deviation (the folder's
``preprocessor_config.json`` when it has one), all in torch: the score is differentiable in the pixels,
so DPS can follow its gradient (through a latent model's VAE decoder too).
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svdd_lightning.rewards.base import Reward

# CLIP's image normalisation (openai/CLIP, and CLIPImageProcessor's defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def aesthetic_head(state: dict[str, Tensor]) -> nn.Module:
    """The linear or MLP head whose weights are ``state`` (module docstring), weights loaded."""
    if set(state) == {"weight", "bias"}:
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict(state)
        return head
    indices = sorted({int(m.group(1)) for key in state if (m := re.fullmatch(r"layers\.(\d+)\.(weight|bias)", key))})
    if not indices or len(indices) * 2 != len(state):
        raise ValueError(f"an aesthetic head has keys weight/bias (linear) or layers.N.weight/bias (MLP); "
                         f"got {sorted(state)[:6]}")
    # Dropout at the indices without weights keeps the released numbering (layers.0, .2, .4, .6, .7).
    layers = [nn.Dropout(0.0) for _ in range(indices[-1] + 1)]
    for i in indices:
        out_features, in_features = state[f"layers.{i}.weight"].shape
        layers[i] = nn.Linear(in_features, out_features)
    wrapper = nn.Module()
    wrapper.layers = nn.Sequential(*layers)
    wrapper.load_state_dict(state)
    return wrapper.layers


class AestheticReward(Reward):
    name: ClassVar[str] = "aesthetic"
    units: ClassVar[str] = "aesthetic score"
    is_differentiable: ClassVar[bool] = True

    def __init__(self, *, path: str, head: str) -> None:
        """
        Args:
            path: a local CLIP vision model folder (``CLIPVisionModelWithProjection.save_pretrained``).
            head: the predictor's head, a local ``.pth`` state dict (linear or MLP, see the module docstring).
        """
        super().__init__()
        from transformers import CLIPVisionModelWithProjection

        from svdd_lightning.errors import CheckpointError
        from svdd_lightning.paths import resolve_path

        folder, head_file = resolve_path(path), resolve_path(head)
        if not (folder / "config.json").is_file():
            raise CheckpointError(f"reward.path={folder} is not a CLIP vision model folder (no config.json); pass the "
                                  f"folder CLIPVisionModelWithProjection.save_pretrained writes.")
        if not head_file.is_file():
            raise CheckpointError(f"reward.head={head_file} does not exist; pass the aesthetic predictor's .pth file.")
        self.encoder = CLIPVisionModelWithProjection.from_pretrained(folder).eval()
        try:
            state = torch.load(head_file, map_location="cpu", weights_only=True)
            self.head = aesthetic_head(dict(state.get("state_dict", state)))
        except Exception as exc:
            raise CheckpointError(f"reward.head={head_file} is not an aesthetic predictor head: {exc}") from exc
        width = self.head[0].in_features if isinstance(self.head, nn.Sequential) else self.head.in_features
        if width != self.encoder.config.projection_dim:
            raise CheckpointError(f"reward.head={head_file} takes {width}-d embeddings but the CLIP model at {folder} "
                                  f"makes {self.encoder.config.projection_dim}-d ones; pass the matching pair.")
        self.size = int(self.encoder.config.image_size)
        mean, std = CLIP_MEAN, CLIP_STD
        processor = folder / "preprocessor_config.json"
        if processor.is_file():
            config = json.loads(processor.read_text())
            mean, std = config.get("image_mean", mean), config.get("image_std", std)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """[-1, 1] RGB (B, 3, H, W) -> CLIP's input: shorter side resized to ``size`` (bicubic), centre crop,
        normalised."""
        x = (images.float() + 1.0) / 2.0
        h, w = x.shape[-2:]
        scale = self.size / min(h, w)
        x = F.interpolate(x, size=(max(self.size, round(h * scale)), max(self.size, round(w * scale))),
                          mode="bicubic", align_corners=False)
        top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
        x = x[..., top:top + self.size, left:left + self.size]
        return (x - self.mean) / self.std

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"the aesthetic reward scores RGB images (B, 3, H, W), got {tuple(images.shape)}")
        embeds = self.encoder(pixel_values=self.preprocess(images)).image_embeds
        embeds = embeds / embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return self.head(embeds).squeeze(-1)
