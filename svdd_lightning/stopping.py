"""Stopping a run cleanly when told to: SIGTERM (a cluster's preemption, ``kill PID``) or SIGINT (Ctrl-C).

A scheduler sends SIGTERM and, after a grace period, SIGKILL. The entry points install :func:`stop_on_signals`:
the first signal only sets a flag, and the run stops at its next safe point by raising :class:`StopRequested`:

- decoding: at the next denoising step (``Decoder.steps``), so the batch in flight is dropped whole (its shard is
  never written) and every finished shard stays; rerunning the same command decodes only the missing batches;
- rollouts (``train.py stage=value``): the same, per rollout batch;
- training: after the current optimizer step, once ``checkpoints/last.ckpt`` holds it (:class:`StopAfterBatch`);
- the benchmark: between and inside cells, each cell resuming from its own shards.

The entry points' error handler (``svdd_lightning.cli.friendly_errors``) turns it into one line that says how to
resume, and exit status 128 + the signal number (143 for SIGTERM, 130 for SIGINT), as a shell reports a process
killed by it. A second signal stops at once with the signal's default action: the files written so far are
whole either way (every output is written to a temporary name and renamed).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: signal.Signals | None = None


class StopRequested(Exception):
    """Raised at a safe point after a stop signal; ``exit_code`` is what the process should exit with."""

    def __init__(self, signum: signal.Signals) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(f"stopped by {self.signal.name}")

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal)


def requested() -> signal.Signals | None:
    """The stop signal received, if any."""
    return _requested


def raise_if_requested() -> None:
    """Raise :class:`StopRequested` when a stop signal has arrived (a safe point: nothing half-done to keep)."""
    if _requested is not None:
        raise StopRequested(_requested)


def _on_signal(signum: int, frame) -> None:  # noqa: ARG001 - the signal module's signature
    global _requested
    if _requested is not None:  # a second signal: stop now, the way the signal does by default
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _requested = signal.Signals(signum)
    print(f"\n{_requested.name} received: stopping at the next safe point (finished work is kept; send it again to "
          f"stop at once)", file=sys.stderr, flush=True)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT request a stop instead of killing the process (main thread only)."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _requested = None
    for s in SIGNALS:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = None


def resume_hint(command: list[str] | None = None) -> str:
    """The one line printed on a stop: how to pick the run up (the same command)."""
    argv = sys.argv if command is None else command
    shown = " ".join([Path(argv[0]).name if argv else "", *argv[1:]]).strip()
    return f"to resume, run the same command again: python {shown}"


class StopAfterBatch(L.Callback):
    """Training: on a stop signal, save the finished step to ``last`` (as the periodic checkpoint would, where
    Lightning resumes from) and stop. Lightning's own SIGTERM handling would end ``fit`` with exit status 0
    after the batch and no checkpoint of it; prediction (decoding, rollouts) stops inside the batch instead."""

    def __init__(self, *, last: Path) -> None:
        self.last = Path(last)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if _requested is None:
            return
        self.last.parent.mkdir(parents=True, exist_ok=True)
        partial = self.last.with_name(self.last.name + ".partial")
        trainer.save_checkpoint(partial)
        if trainer.is_global_zero:
            os.replace(partial, self.last)  # a SIGKILL during the save leaves the previous last.ckpt whole
        raise_if_requested()

    def on_predict_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        raise_if_requested()
