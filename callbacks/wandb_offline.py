"""Reading back an offline W&B run (``run-*.wandb``), what a test needs to check what was logged, and
waiting until W&B has written one whole (``finish_and_flush``, for the entry points).

The file is a LevelDB-style log (W&B's "LEVELDBLOG" format): a 7-byte header (":W&B", magic
0xBEE1, version 0) and then 32 KiB blocks of records, each with a 4-byte checksum (CRC-32 of the type
byte and the payload), a 2-byte length, a 1-byte type (1 full, 2 first, 3 middle, 4 last) and the
payload, a serialised ``wandb_internal_pb2.Record``. wandb 0.31 no longer ships a Python reader for it.

The file is written by W&B's service process, not by the process that logs, and it reaches the disk a
whole 32 KiB block at a time (and every 15 s, ``x_transaction_log_flush_interval``): the end of the file,
the last rows and the ``exit`` record, is written when the service closes the run, which happens after
``run.finish()`` has returned (the client tells the service it is done and does not wait). A reader that
opens the file right after the run finished can therefore miss its last rows. ``read_finished_run`` waits
until the file ends with the ``exit`` record that ``finish()`` writes last; read a run through it, not
through ``records``, and finish one with ``finish_and_flush``.
"""

from __future__ import annotations

import json
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32 * 1024
HEADER = 7
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
FINISH_TIMEOUT = 60.0  # seconds; a tiny run's service closes it within milliseconds, a loaded machine's in seconds


class RunNotFinished(TimeoutError):
    """The run file did not end with its ``exit`` record within the timeout."""


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each complete chunk, in order; stops at the first chunk not wholly written yet
    (short or failing its checksum), since the writer may be in the middle of it."""
    pos = HEADER
    while pos + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < RECORD_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        end = pos + RECORD_HEADER + length
        if checksum == 0 and length == 0 and kind == 0:  # zero padding up to the end of a block
            pos += left_in_block
            continue
        if end > len(data) or zlib.crc32(data[pos + 6 : end]) != checksum:
            return
        yield kind, data[pos + RECORD_HEADER : end]
        pos = end


def iter_payloads(path: str | Path) -> Iterator[bytes]:
    """The serialised records the file holds now, complete ones only (a record split over blocks is
    yielded once its last chunk is there). No waiting: see ``read_finished_run``."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pending: bytes | None = None
    for kind, payload in _chunks(data):
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE and pending is not None:
            pending += payload
        elif kind == LAST and pending is not None:
            yield pending + payload
            pending = None


def records(path: str | Path) -> list[Any]:
    """The ``wandb_internal_pb2.Record`` messages the file holds now (possibly not all of the run's)."""
    from wandb.proto import wandb_internal_pb2

    out = []
    for payload in iter_payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        out.append(record)
    return out


def record_type(record: Any) -> str | None:
    return record.WhichOneof("record_type")


def is_finished(found: list[Any]) -> bool:
    """True when the records end with the ``exit`` record: ``finish()`` writes it last, after every row."""
    return bool(found) and record_type(found[-1]) == "exit"


def read_finished_run(path: str | Path, *, timeout: float = FINISH_TIMEOUT, interval: float = 0.05) -> list[Any]:
    """Every record of a finished run, once the file holds them all: polls until it ends with the ``exit``
    record, for at most ``timeout`` seconds, then raises RunNotFinished saying what it found."""
    deadline = time.monotonic() + timeout
    while True:
        found = records(path) if Path(path).exists() else []
        if is_finished(found):
            return found
        if time.monotonic() >= deadline:
            held = f"{len(found)} complete records, the last {record_type(found[-1])!r}" if found else "no record"
            raise RunNotFinished(
                f"{path} has no exit record after {timeout:g} s ({held}): the run was not finished with "
                "wandb.finish(), or W&B's service is still writing it")
        time.sleep(interval)


def history_rows(found: list[Any]) -> list[dict[str, Any]]:
    """The logged history rows among ``found``, values decoded from JSON."""
    rows = []
    for record in found:
        if record_type(record) != "history":
            continue
        row = {}
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            row[key] = json.loads(item.value_json)
        rows.append(row)
    return rows


def read_history(path: str | Path, *, timeout: float = FINISH_TIMEOUT) -> list[dict[str, Any]]:
    """The logged history rows of a finished offline run file (waits for the run to be written whole)."""
    return history_rows(read_finished_run(path, timeout=timeout))


def run_file(run: Any) -> Path | None:
    """The run file of a live wandb Run, None for anything else (Lightning's stand-in experiment on DDP ranks
    other than 0) or when W&B keeps no file (``x_skip_transaction_log``)."""
    path = getattr(getattr(run, "settings", None), "sync_file", None)
    return Path(path) if isinstance(path, str) and Path(path).exists() else None


def finish_and_flush(run: Any, *, timeout: float = FINISH_TIMEOUT) -> None:
    """``run.finish()``, then wait until W&B's service has written the run file whole, so that a ``wandb sync``
    (or any reader) right after the command sees every row: ``finish()`` returns before the service writes
    the file's last block (see the module docstring). A timeout is one stderr line, not an error: the run's
    results are saved by then, and the service still completes the file when it closes the run."""
    path = run_file(run)
    run.finish()
    if path is None:
        return
    try:
        read_finished_run(path, timeout=timeout)
    except RunNotFinished as exc:
        print(f"W&B: {exc}; its last rows may be missing from a `wandb sync` run now", file=sys.stderr, flush=True)
