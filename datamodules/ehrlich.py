"""Training data of an Ehrlich function's pre-trained model: samples of the function's own Markov process
(holo's ``initial_solution(n)``, deterministic in the function's ``random_seed``), the "natural" sequences."""

from __future__ import annotations

from datamodules.base import TableDataModule, check_positive, check_val_fraction, check_workers, seeded_split
from svdd_lightning.domains.ehrlich import EhrlichDomain
from svdd_lightning.ranges import AtLeastOne, Probability


class EhrlichDataModule(TableDataModule):
    """``num_sequences`` DMP samples of the domain's function, split into train and validation by ``seed``.
    Batches are ``{"tokens": (B, dim) long}``."""

    COLUMNS = ("tokens",)

    def __init__(self, *, domain: EhrlichDomain, num_sequences: AtLeastOne = 65536, batch_size: AtLeastOne = 256,
                 val_fraction: Probability = 0.02, num_workers: int = 0, seed: int = 0) -> None:
        check_positive("num_sequences", num_sequences)
        check_positive("batch_size", batch_size)
        check_val_fraction(val_fraction, example=0.02)
        check_workers(num_workers)
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.domain = domain
        self.num_sequences = int(num_sequences)
        self.val_fraction = float(val_fraction)
        self.train_tokens = self.val_tokens = None

    def build(self) -> None:
        samples = self.domain.function.initial_solution(self.num_sequences).long()
        if samples.dim() == 1:  # holo squeezes a single sample
            samples = samples.unsqueeze(0)
        train, val = seeded_split(samples.shape[0], self.val_fraction, self.seed)
        self.train_tokens, self.val_tokens = samples[train], samples[val]
