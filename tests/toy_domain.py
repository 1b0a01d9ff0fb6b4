"""A domain added from outside the library: sequences over a 3-letter alphabet ("HPX": hydrophobic, polar,
other), with its own text file format and its own naturalness metric, and a plain-function reward.

Nothing under svdd_lightning/ knows about it: tests/configs/domain/toy.yaml points the ``objects`` node
here and the reward at :func:`hydrophobic_fraction` (tests/configs/reward/toy_hydrophobic.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from svdd_lightning.atomic import atomic_path
from svdd_lightning.domains.sequences import SequenceDomain


class ToyDomain(SequenceDomain):
    name = "toy"

    def __init__(self, *, alphabet: str = "HPX", native_name: str = "samples.toy") -> None:
        super().__init__(alphabet=alphabet, mask_letter="_", native_name=native_name)

    def write_native(self, directory: Path, *, samples: Tensor, texts: list[str], rewards: list[float],
                     indices: list[int]) -> list[Path]:
        """One ``index<TAB>sequence<TAB>reward`` line per sample."""
        path = Path(directory) / self.native_name
        with atomic_path(path) as tmp, open(tmp, "w") as handle:
            for i, text, r in zip(indices, texts, rewards):
                handle.write(f"{i}\t{text}\t{r:.6g}\n")
        return [path]

    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        """The library's sequence metrics plus the longest run of one letter, averaged (a toy statistic)."""
        out = super().naturalness(samples, diffusion=diffusion, seed=seed)
        runs = []
        for text in self.to_text(samples):
            best = current = 1
            for a, b in zip(text, text[1:]):
                current = current + 1 if a == b else 1
                best = max(best, current)
            runs.append(best)
        out["mean_longest_run"] = sum(runs) / len(runs)
        return out


def hydrophobic_fraction(sequences: list[str], letter: str = "H") -> list[float]:
    """The user's reward: a plain function of strings, the fraction of ``letter``."""
    return [s.count(letter) / len(s) for s in sequences]
