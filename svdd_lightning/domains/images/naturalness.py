"""Naturalness of image samples: do reward-guided samples still look like real digits?

``ImageNaturalness(samples, diffusion=..., seed=...)`` returns (all floats):

- ``unique_fraction``: the fraction of distinct images (as stored, uint8 pixels), and
  ``diversity``: the mean root-mean-square pixel difference between two different samples (in
  the [-1, 1] pixel units the model works in): copies and collapse onto one shape show here.
- ``log_likelihood`` / ``log_likelihood_median``: the DDPM ELBO under the pre-trained model
  (nats per image, summed over pixels; a continuous density, so it can be positive).
- ``frechet_distance``: the Frechet distance (the formula of FID) between Gaussians fitted to
  the samples' and to real images' features, the features being the penultimate layer of the
  naturalness classifier (below): the input of its last linear layer, 64 numbers for the
  shipped one. Lower is closer to real digits. The estimate is biased upward for small sample
  counts, so ``frechet_distance_real`` reports the same statistic for an equally large random
  subset of the real images: the floor to compare against. Its scale is the classifier's own
  (a floor of about 1 for the shipped judge at 64 samples, about 19 in the reward classifier's
  features), and it also rises with mode collapse (the 64 zeros of ``reward=digit
  decoder=svdd_pm`` score about 29 against the floor of 1). Needs at least 2 samples.
- ``digit_rate``: the fraction of samples the classifier assigns to some class with a
  probability above ``confidence_threshold`` ("looks like a digit"), and ``digit_rate_real``
  the same rate on held-out real images (the validation split, unseen by the classifier) as
  its calibration. Why 0.9, measured for the shipped naturalness classifier (100% validation
  accuracy on the 180 held-out digits): the rate at 0.9 is 97.8% on held-out real digits, 0.1%
  on uniform and 0.6% on Gaussian pixel noise (2,000 images each), 0% on blank images (every
  pixel -1, 0 or +1), 21% on 3x3-blurred digits and 21% on the average of two different digits.
  0.5 passes 11-23% of pure noise and 79% of blurred digits; 0.99 rejects 14% of real digits.
  0.9 keeps real digits in and noise out; smudged shapes get little credit from this judge
  (the reward's classifier passes 72% of blurred digits and 4-5% of noise at 0.9).
- ``class_entropy_bits``: entropy of the histogram of predicted classes (log2(10) = 3.32 for
  a uniform mix of the 10 digits, 0 when every sample is the same digit): mode collapse.

The classifier (``classifier``; the image domain config points it at ``checkpoints/image/
naturalness_classifier.ckpt``) is an independent judge, deliberately NOT the classifier the
``digit`` reward scores with (``checkpoints/image/oracle_digit.ckpt``): another architecture
(:class:`~svdd_lightning.networks.image.PrototypeClassifier`, LeNet-style convolutions and a
distance-to-prototype head, against the reward's GroupNorm
:class:`~svdd_lightning.networks.image.ImageClassifier`) trained by the same oracle stage on the
same split with another seed (``train.py stage=oracle domain=image seed=1
oracle.network='${naturalness_network}'``). Judged by the reward's own classifier, samples that
exploit it (pixels pushed along its gradient) look like perfect digits and reward hacking is
invisible; an independent judge shows it as a drop of ``digit_rate``. Measured: uniform noise
pushed by 30 signed-gradient steps (0.05 each) on the reward's log p(0) reaches a reward of
-0.000 nats; the reward's classifier calls all of it a confident "0" (digit_rate 1.0, class
entropy 0), the shipped judge only 25% of it (class entropy 1.9 bits). Do not point
``classifier`` at the reward's checkpoint.

The real images come from ``reference``, a small ``.npz`` that ``train.py stage=pretrain``
writes next to the pre-trained checkpoint (:meth:`write_reference`: up to 2,000 real images as
uint8, with a mask of the held-out ones; about 50 kB for the digits). The classifier metrics are skipped (only the ELBO is reported) when the classifier or
the reference file does not exist yet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.metrics import elbo_log_likelihood, pairwise_rms_distance, unique_fraction
from svdd_lightning.atomic import atomic_path

MAX_REFERENCE_IMAGES = 2000


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    Tr((C1 C2)^(1/2)) = sum of sqrt(eigenvalues of C1^(1/2) C2 C1^(1/2)), a symmetric PSD
    matrix, so the trace is computed with symmetric eigendecompositions (no complex sqrtm);
    rank-deficient covariances (fewer samples than features) are fine."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    w, v = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    middle = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2.0 * cross)
    return max(value, 0.0)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def last_linear(network: nn.Module) -> nn.Linear:
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(network).__name__} has no linear layer to take penultimate features from")
    return linears[-1]


@torch.no_grad()
def classifier_outputs(network: nn.Module, images: Tensor, batch_size: int = 512) -> tuple[Tensor, Tensor]:
    """(penultimate features (N, D), class probabilities (N, K)) of images (N, C, H, W)."""
    captured: list[Tensor] = []
    handle = last_linear(network).register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0].detach()))
    device = next(network.parameters()).device
    probs = []
    try:
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(device).float()
            probs.append(torch.softmax(network(chunk).float(), dim=-1).cpu())
    finally:
        handle.remove()
    return torch.cat([c.cpu().float() for c in captured]), torch.cat(probs)


def images_to_uint8(images: Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def uint8_to_images(pixels: np.ndarray) -> Tensor:
    return torch.from_numpy(pixels.astype(np.float32)) / 127.5 - 1.0


class ImageNaturalness:
    """Naturalness of image samples; the image domain (``ImageDomain``) builds it."""

    reference_name = "real_images.npz"

    def __init__(
        self,
        *,
        classifier: str | None = None,
        reference: str | None = None,
        confidence_threshold: float = 0.9,
        num_estimates: int = 16,
        batch_size: int = 256,
    ) -> None:
        """
        Args:
            classifier: an image classification oracle checkpoint: an independent judge, not the
                reward's classifier (see the module docstring).
            reference: real images written by :meth:`write_reference` (``real_images.npz``).
            confidence_threshold: max class probability above which a sample "looks like a digit".
            num_estimates: stratified timesteps of the ELBO estimate per image.
            batch_size: images per network call.
        """
        if not 0.0 < confidence_threshold < 1.0:
            raise ValueError(f"confidence_threshold must be in (0, 1), got {confidence_threshold}")
        if num_estimates < 1 or batch_size < 1:
            raise ValueError(f"num_estimates and batch_size must be >= 1, got {num_estimates} and {batch_size}")
        self.classifier = classifier
        self.reference = reference
        self.confidence_threshold = float(confidence_threshold)
        self.num_estimates = int(num_estimates)
        self.batch_size = int(batch_size)

    # -- files --------------------------------------------------------------------------- #

    def load_classifier(self) -> nn.Module | None:
        from svdd_lightning.checkpoints import resolve_path
        from svdd_lightning.rewards.oracle import build_oracle_network

        if not self.classifier or not resolve_path(self.classifier).is_file():
            return None
        network, meta = build_oracle_network(self.classifier)
        if meta["task"] != "classification":
            return None
        return network

    def load_reference(self) -> tuple[Tensor, Tensor] | None:
        """(real images in [-1, 1], held-out mask: images the classifier was not trained on)."""
        from svdd_lightning.checkpoints import resolve_path

        if not self.reference:
            return None
        path = resolve_path(self.reference)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            images = uint8_to_images(data["images"])
            heldout = torch.from_numpy(data["heldout"]) if "heldout" in data.files else torch.ones(len(images), dtype=torch.bool)
        return images, heldout

    def write_reference(self, datamodule, directory: Path) -> Path:
        """Up to 2,000 real images (train and validation, a seeded subset), uint8, as ``.npz``."""
        images = torch.cat([datamodule.train_images, datamodule.val_images])
        labels = torch.cat([datamodule.train_labels, datamodule.val_labels])
        heldout = torch.cat([torch.zeros(len(datamodule.train_images), dtype=torch.bool),
                             torch.ones(len(datamodule.val_images), dtype=torch.bool)])
        if images.shape[0] > MAX_REFERENCE_IMAGES:
            pick = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(0))[:MAX_REFERENCE_IMAGES]
            pick = pick.sort().values
            images, labels, heldout = images[pick], labels[pick], heldout[pick]
        path = Path(directory) / self.reference_name
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, images=images_to_uint8(images), labels=labels.numpy(),
                                heldout=heldout.numpy())
        return path

    # -- metric -------------------------------------------------------------------------- #

    def __call__(self, samples: Tensor, *, diffusion: Diffusion | None, seed: int) -> dict[str, float]:
        """The metrics of the module docstring; a metric that is not finite is left out."""
        out = self.compute(samples.detach().float().cpu(), diffusion=diffusion, seed=seed)
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}

    def compute(self, samples: Tensor, *, diffusion: Diffusion | None, seed: int) -> dict[str, float]:
        # Distinct images as the files store them (uint8 pixels); diversity in [-1, 1] pixel units.
        out: dict[str, float] = {"unique_fraction": unique_fraction(torch.from_numpy(images_to_uint8(samples)))}
        if samples.shape[0] >= 2:
            out["diversity"] = pairwise_rms_distance(samples)
        if diffusion is not None:
            out.update(elbo_log_likelihood(samples, diffusion=diffusion, seed=seed, batch_size=self.batch_size,
                                           num_estimates=self.num_estimates))

        classifier = self.load_classifier()
        if classifier is None:
            return out
        features, probs = classifier_outputs(classifier, samples)
        out["digit_rate"] = float((probs.max(dim=-1).values > self.confidence_threshold).float().mean())
        counts = torch.bincount(probs.argmax(dim=-1), minlength=probs.shape[1]).double()
        freq = counts[counts > 0] / counts.sum()
        out["class_entropy_bits"] = abs(float(-(freq * freq.log2()).sum()))

        loaded = self.load_reference()
        if loaded is None:
            return out
        real, heldout = loaded
        real_features, real_probs = classifier_outputs(classifier, real)
        confident = real_probs.max(dim=-1).values > self.confidence_threshold
        out["digit_rate_real"] = float(confident[heldout].float().mean()) if heldout.any() else math.nan
        n = samples.shape[0]
        if n >= 2 and real.shape[0] >= 2:
            mu_r, cov_r = gaussian_stats(real_features.numpy())
            out["frechet_distance"] = frechet_distance(*gaussian_stats(features.numpy()), mu_r, cov_r)
            m = min(n, real.shape[0])
            pick = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(seed))[:m]
            out["frechet_distance_real"] = frechet_distance(*gaussian_stats(real_features[pick].numpy()), mu_r, cov_r)
        return out
