"""DNA rewards.

``hepg2_motif``: a HepG2 (liver) enhancer-activity proxy, the mean over the liver
transcription factors HNF4A, HNF1A, FOXA2 and CEBPA of the best PSSM hit (log-odds, bits) on
either strand. PSSMs come from JASPAR via pyjaspar (offline SQLite) and Biopython; scanning is a
batched conv1d over one-hot input, so it runs on the GPU with the rest of the loop and is
differentiable (DPS can use it). A test checks it against Biopython's own PSSM scan.

``gc``: the fraction of G and C.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from svdd_lightning.networks.sequence import soft_one_hot
from svdd_lightning.rewards.base import Reward

# JASPAR CORE matrices of the liver factors (human where available).
HEPG2_MOTIFS: tuple[str, ...] = ("MA0114.5", "MA0046.3", "MA0047.4", "MA0102.5")  # HNF4A HNF1A FOXA2 CEBPA
JASPAR_RELEASE = "JASPAR2026"
PSEUDOCOUNTS = 0.5


def load_pssms(matrix_ids: Sequence[str], release: str = JASPAR_RELEASE, pseudocounts: float = PSEUDOCOUNTS):
    """Biopython PSSMs (log2-odds against a uniform background) for JASPAR matrix ids."""
    from pyjaspar import jaspardb

    db = jaspardb(release=release)
    pssms = []
    for matrix_id in matrix_ids:
        motif = db.fetch_motif_by_id(matrix_id)
        if motif is None:
            raise ValueError(f"JASPAR matrix {matrix_id!r} is not in pyjaspar's {release}; pick another id")
        pssms.append((motif.name, motif.counts.normalize(pseudocounts=pseudocounts).log_odds()))
    return pssms


class MotifReward(Reward):
    """Mean over motifs of the best log-odds hit on either strand of a one-hot sequence."""

    name: ClassVar[str] = "motif"
    units: ClassVar[str] = "bits, log2-odds"
    is_differentiable: ClassVar[bool] = True

    def __init__(self, *, matrix_ids: Sequence[str], release: str = JASPAR_RELEASE) -> None:
        super().__init__()
        pssms = load_pssms(matrix_ids, release)
        self.motif_names = [name for name, _ in pssms]
        self.num_motifs = len(pssms)
        for k, (_, pssm) in enumerate(pssms):
            weights = torch.tensor([pssm[base] for base in "ACGT"], dtype=torch.float32)  # (4, W)
            self.register_buffer(f"filter_{k}", weights.unsqueeze(0))
            # Reverse complement: flip positions and swap A<->T, C<->G.
            self.register_buffer(f"filter_rc_{k}", weights.flip(-1)[[3, 2, 1, 0]].unsqueeze(0))

    def per_motif(self, x0: Tensor) -> Tensor:
        """(B, K) best hit of each motif over positions and both strands."""
        onehot = soft_one_hot(x0, 4).transpose(1, 2)  # (B, 4, L)
        best = []
        for k in range(self.num_motifs):  # a handful of motifs, each one batched conv
            fwd = F.conv1d(onehot, getattr(self, f"filter_{k}")).amax(dim=(1, 2))
            rc = F.conv1d(onehot, getattr(self, f"filter_rc_{k}")).amax(dim=(1, 2))
            best.append(torch.maximum(fwd, rc))
        return torch.stack(best, dim=-1)

    def forward(self, x0: Tensor) -> Tensor:
        return self.per_motif(x0).mean(dim=-1)


class HepG2MotifReward(MotifReward):
    name: ClassVar[str] = "hepg2_motif"

    def __init__(self, *, release: str = JASPAR_RELEASE) -> None:
        super().__init__(matrix_ids=HEPG2_MOTIFS, release=release)


class GCReward(Reward):
    """GC content in [0, 1]; works for DNA (ACGT) and RNA (ACGU) token ids alike."""

    name: ClassVar[str] = "gc"
    units: ClassVar[str] = "fraction G+C"
    is_differentiable: ClassVar[bool] = True

    def forward(self, x0: Tensor) -> Tensor:
        onehot = soft_one_hot(x0, 4)
        return onehot[..., 1:3].sum(dim=-1).mean(dim=-1)
