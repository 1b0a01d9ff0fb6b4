"""Where relative paths in configs point: the working directory first, then the repository root
(so `python decode.py` works from any folder with the shipped `checkpoints/...` and `data/...`)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_path(path: str | Path) -> Path:
    """An absolute path as given; a relative one as given when it exists from the working
    directory, else under the repository root (named there in error messages when missing)."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


# The Hydra config groups of decode.py and train.py (decoder/, domain/, reward/, value/...): configs/ of the
# checkout, which ships inside the package as svdd_lightning/configs (a link in the checkout, files in a wheel).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
