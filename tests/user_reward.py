"""A user-defined reward, as a researcher would write one outside the package."""

import torch

from svdd_lightning.rewards.base import Reward


class ATContent(Reward):
    name = "at_content"

    @torch.no_grad()
    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        return ((x0 == 0) | (x0 == 3)).float().mean(dim=-1)


class NaNOnSecond(Reward):
    """Returns NaN for the second object of every batch (a reward with a bug)."""

    name = "nan_on_second"

    @torch.no_grad()
    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        r = ((x0 == 0) | (x0 == 3)).float().mean(dim=-1)
        if r.shape[0] > 1:
            r[1] = float("nan")
        return r


class Raises(Reward):
    name = "raises"

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("assay server unreachable")


class KilledMidRun(Reward):
    """AT content, but the process SIGKILLs itself at the SVDD_TEST_KILL_AFTER-th call when that
    variable is set: a real crash (no clean-up, no exception) in the middle of a decode. With
    SVDD_TEST_SIGNAL=SIGTERM (or SIGINT) it sends itself that signal instead, once: a scheduler's
    preemption or a Ctrl-C at a known point of the run, with no timing involved."""

    name = "at_content"
    calls = 0

    @torch.no_grad()
    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        import os
        import signal

        type(self).calls += 1
        limit = os.environ.get("SVDD_TEST_KILL_AFTER")
        if limit and type(self).calls == int(limit):
            os.kill(os.getpid(), getattr(signal, os.environ.get("SVDD_TEST_SIGNAL", "SIGKILL")))
        return ((x0 == 0) | (x0 == 3)).float().mean(dim=-1)


# Plain functions, as a user writes them (README "Your own reward"): lists of objects in, floats out.


def gc_fraction(sequences: list[str]) -> list[float]:
    """DNA or RNA strings -> the fraction of G and C."""
    return [(s.count("G") + s.count("C")) / len(s) for s in sequences]


def nitrogen_count(smiles: list[str], element: str = "N") -> list[float]:
    """SMILES -> how many atoms of ``element`` the molecule has."""
    from rdkit import Chem

    out = []
    for s in smiles:
        mol = Chem.MolFromSmiles(s)
        out.append(0.0 if mol is None else float(sum(a.GetSymbol() == element for a in mol.GetAtoms())))
    return out


def length_to_the_alpha(smiles: list[str], alpha: float = 0.3) -> list[float]:
    """A user's function with an argument named like a combination option (configs/reward/shared/combination.yaml)."""
    return [len(s) ** alpha for s in smiles]
