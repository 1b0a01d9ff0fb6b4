"""Shared plumbing of the entry points: clear errors instead of tracebacks, trainer building."""

from __future__ import annotations

import functools
import inspect
import logging
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from svdd_lightning.errors import SVDDError

log = logging.getLogger("svdd_lightning")


def friendly_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our input errors into a one-paragraph message and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        from svdd_lightning.stopping import StopRequested, resume_hint, stop_on_signals

        try:
            with stop_on_signals():  # SIGTERM / Ctrl-C: stop at the next safe point, keep what is finished
                return main(*args, **kwargs)
        except (StopRequested, SIGTERMException) as exc:
            # Lightning's own SIGTERM exit (after a training batch) would exit with status 0: a stop is not a finish.
            stop = exc if isinstance(exc, StopRequested) else StopRequested(signal.SIGTERM)
            print(f"{stop}: finished work is kept; {resume_hint()}", file=sys.stderr, flush=True)
            sys.exit(stop.exit_code)
        except SVDDError as exc:
            fail(str(exc))
        except InstantiationException as exc:
            # Hydra wraps errors raised inside _target_ constructors; show ours plainly. A ValueError
            # from a constructor is an option out of range (num_candidates=0, alpha=-1): name the node.
            cause = exc.__cause__
            while cause is not None and not isinstance(cause, (SVDDError, ValueError)):
                cause = cause.__cause__
            if cause is None:
                raise
            if isinstance(cause, SVDDError):
                fail(str(cause))
            node = str(exc).rsplit("full_key:", 1)[-1].strip() if "full_key:" in str(exc) else "an option"
            fail(f"invalid {node} option: {cause} (set it on the command line, e.g. {node}.NAME=VALUE).")
        except MissingMandatoryValue as exc:
            fail(f"the option {exc.full_key} has no value; pass {exc.full_key}=... on the command line "
                 f"(e.g. reward.checkpoint=PATH for reward=oracle).")

    return wrapper


def fail(message: str) -> None:
    import os

    if os.environ.get("SVDD_DEBUG"):  # the debug switch: the full traceback instead of the message
        raise
    print(f"error: {message} (SVDD_DEBUG=1 shows the full traceback)", file=sys.stderr)
    sys.exit(2)


def retired_spelling(argv: list[str]) -> str | None:
    """The error for a spelling that no longer composes, read (never rewritten) from the command line:
    ``reward=[qed,my_module.my_score]`` was once rewritten to reward=multi; Hydra's own list selection takes only
    reward files, and an import path names none, so Hydra alone would say only that no such file exists."""
    for arg in argv:
        if arg.startswith("reward=[") and arg.endswith("]") and "." in arg:
            listed = arg.removeprefix("reward=")
            return (f"{arg}: an import path names no reward file, so a list with one is written "
                    f"reward=multi reward.components={listed} (the same reward).")
    return None


def start_process(*, float32_matmul_precision: str | None = None) -> None:
    """What a command-line process sets before Hydra composes: glibc keeps freed memory (svdd_lightning/allocator.py:
    page faults were 60% of CPU decode time), and decode.py's matmul precision ("high": TF32 on GPUs that have it);
    a retired spelling stops here with one error line and exit code 2."""
    from svdd_lightning.allocator import keep_freed_memory

    retired = retired_spelling(sys.argv[1:])
    if retired is not None:
        print(f"error: {retired}", file=sys.stderr)
        raise SystemExit(2)
    keep_freed_memory()
    if float32_matmul_precision is not None:
        import torch

        torch.set_float32_matmul_precision(float32_matmul_precision)


def quiet_lightning() -> None:
    """Hide Lightning hints that do not apply to our runs (CPU-only data loading tips)."""
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*predict_dataloader.*num_workers.*")
    # Seed batches are dataset items (fixed runs of global indices); our shards carry the indices.
    warnings.filterwarnings("ignore", ".*Couldn't infer the batch indices.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")  # Lightning 2.6 vs torch 2.13 deprecation
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def accepts(target: str, name: str) -> bool:
    """Whether the class behind ``target`` takes keyword ``name`` (to hand decoders only what they use)."""
    return name in inspect.signature(get_class(target)).parameters


def is_launcher_process() -> bool:
    """True in the process a user started, not in the DDP children Lightning launches later
    (they run with LOCAL_RANK/NODE_RANK set): the one that may clear or prepare output folders."""
    import os

    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def writable_output_dir(path) -> None:
    """Create ``path`` and check a file can be written there, or raise a ConfigError naming it."""
    from pathlib import Path

    from svdd_lightning.errors import ConfigError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output_dir={path} cannot be written ({exc.strerror or exc}); pass a writable "
                          f"output_dir=DIR.") from None


def save_config(cfg: DictConfig, path) -> None:
    """The composed config (Hydra's own node left out) as YAML, for reproducing a run."""
    from svdd_lightning.atomic import atomic_path

    conf = {k: cfg[k] for k in cfg if k != "hydra"}
    with atomic_path(path) as tmp:
        OmegaConf.save(OmegaConf.create(conf), tmp)
