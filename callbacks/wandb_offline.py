"""Reading back an offline W&B run (``run-*.wandb``): what a test needs to check what was logged.

The file is a LevelDB-style log (W&B's "LEVELDBLOG" format): a 7-byte header (":W&B", magic
0xBEE1, version 0) and then 32 KiB blocks of records, each with a 4-byte checksum, a 2-byte length,
a 1-byte type (1 full, 2 first, 3 middle, 4 last) and the payload, a serialised
``wandb_internal_pb2.Record``. wandb 0.31 no longer ships a Python reader for it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
RECORD_HEADER = 7


def iter_payloads(path: str | Path):
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos = HEADER
    pending = b""
    while pos + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - (pos % BLOCK)
        if left_in_block < RECORD_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        payload = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind == 1:
            yield payload
        elif kind == 2:
            pending = payload
        elif kind == 3:
            pending += payload
        elif kind == 4:
            yield pending + payload
            pending = b""


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The logged history rows of an offline run file, values decoded from JSON."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for payload in iter_payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            row[key] = json.loads(item.value_json)
        rows.append(row)
    return rows
