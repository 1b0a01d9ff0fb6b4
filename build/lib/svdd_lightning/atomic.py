"""Write files so that an interrupted run never leaves half of one behind.

``with atomic_path(path) as tmp:`` hands out ``path`` + ``.partial`` to write; the file is renamed
onto ``path`` only when the block finishes, and removed when it raises. Every output of the
project (summaries, samples, shards, rollouts, references, plots) goes through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
