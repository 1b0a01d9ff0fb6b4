"""Ranges declared on constructor parameters: ``num_candidates: AtLeastOne = 10``.

``typing.Annotated`` keeps the type a type (type checkers and IDEs see ``int``) and carries the range to
svdd_lightning/options.py, which checks a config's options against it before anything is built, and names the
option by its full key when a value is out of range. Constructors keep their own checks for the Python API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``ge``/``gt`` below, ``le``/``lt`` above (None: unbounded)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        parts = [f">= {_num(self.ge)}" if self.ge is not None else "", f"> {_num(self.gt)}" if self.gt is not None else "",
                 f"<= {_num(self.le)}" if self.le is not None else "", f"< {_num(self.lt)}" if self.lt is not None else ""]
        return " and ".join(p for p in parts if p)

    def outside(self, whole: bool) -> list[float]:
        """Values just outside the range (for the every-option test)."""
        step = 1 if whole else 0.5
        out = []
        if self.ge is not None:
            out.append(self.ge - step)
        if self.gt is not None:
            out.append(self.gt)  # the bound itself is outside
        if self.le is not None:
            out.append(self.le + step)
        if self.lt is not None:
            out.append(self.lt)
        return [int(v) if whole else float(v) for v in out]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


AtLeastOne = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
NonNegative = Annotated[float, Range(ge=0)]
Positive = Annotated[float, Range(gt=0)]
Fraction = Annotated[float, Range(gt=0, le=1)]  # a share in (0, 1]
Probability = Annotated[float, Range(ge=0, le=1)]  # a share in [0, 1]
FiniteFloat = Annotated[float, Range()]


