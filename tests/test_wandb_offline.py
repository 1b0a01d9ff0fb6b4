"""Reading back offline W&B run files (callbacks/wandb_offline.py) never races their writer: a reader sees only
complete records, waits for the run's exit record, and an entry point's run file is whole once it finished it."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

from callbacks import wandb_offline
from callbacks.wandb_offline import (BLOCK, RunNotFinished, finish_and_flush, history_rows, is_finished, iter_payloads,
                                     read_finished_run, read_history, record_type, records)

ROWS = 200  # each row ~410 bytes: the file spans three 32 KiB blocks and rows split across blocks


def leveldb_log(payloads: list[bytes]) -> bytes:
    """A run file as wandb-core's LevelDB writer lays it out: the 7-byte header, then each payload in chunks
    that never cross a 32 KiB block (full, or first / middle... / last), a block's last < 7 bytes zero."""
    out = bytearray(b":W&B" + struct.pack("<HB", 0xBEE1, 0))
    for payload in payloads:
        rest, first = payload, True
        while first or rest:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += bytes(left)
                continue
            chunk, rest = rest[: left - 7], rest[left - 7 :]
            kind = (1 if not rest else 2) if first else (4 if not rest else 3)
            out += struct.pack("<IHB", zlib.crc32(bytes([kind]) + chunk), len(chunk), kind) + chunk
            first = False
    return bytes(out)


def run_payloads(rows: int = ROWS, *, finished: bool = True) -> list[bytes]:
    from wandb.proto import wandb_internal_pb2 as pb

    found = [pb.Record(run=pb.RunRecord(run_id="abc"))]
    for i in range(rows):
        record = pb.Record()
        record.history.item.add(key="step", value_json=json.dumps(i))
        record.history.item.add(key="values", value_json=json.dumps(list(range(100))))
        found.append(record)
    if finished:
        found.append(pb.Record(exit=pb.RunExitRecord(exit_code=0)))
    return [r.SerializeToString() for r in found]


@pytest.fixture
def whole() -> bytes:
    data = leveldb_log(run_payloads())
    assert len(data) > 2 * BLOCK
    return data


def test_a_file_cut_anywhere_reads_as_a_prefix_of_its_records_and_is_finished_only_whole(tmp_path, whole):
    """What a reader meets while the service writes: any prefix of the file, a record's header or chunk cut, a
    record split over blocks half there. It reads the complete records before the cut, none garbled."""
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(whole)
    full = [r.SerializeToString() for r in records(path)]
    assert full == run_payloads()
    cuts = sorted({*range(7, len(whole), 251), *(b * BLOCK + d for b in (1, 2) for d in (-8, -1, 0, 1, 6, 7, 8))})
    for cut in cuts:
        path.write_bytes(whole[:cut])
        got = [r.SerializeToString() for r in records(path)]
        assert got == full[: len(got)], cut
        assert not is_finished(records(path)), cut
    path.write_bytes(whole)
    assert is_finished(records(path))


def test_a_record_failing_its_checksum_ends_the_read(tmp_path, whole):
    """Bytes of a record not written yet (a torn write) fail its CRC-32: the reader stops before it."""
    torn = bytearray(whole)
    torn[-1] ^= 0xFF  # the exit record's last byte
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(bytes(torn))
    assert [r.SerializeToString() for r in records(path)] == run_payloads()[:-1]


def test_the_waiting_read_returns_every_row_once_the_writer_appends_the_rest(tmp_path, whole, monkeypatch):
    """The race of issue 23: a reader that opens the file before the writer wrote its last block. The plain read
    misses rows; read_history waits until the exit record is there and gets all of them. The writer appends the
    rest when the reader has polled and found the run unfinished (no timing: it happens on that poll)."""
    path = tmp_path / "run-abc.wandb"
    cut = 2 * BLOCK + 1000  # the service has written two whole blocks: the last rows and the exit record are not there
    path.write_bytes(whole[:cut])
    early = history_rows(records(path))
    assert 0 < len(early) < ROWS

    polls = []

    def records_then_writer_finishes(p):
        found = records(p)
        polls.append(is_finished(found))
        if len(polls) == 1:  # the writer goes on: first a torn piece, read on the next poll, then the rest
            with open(p, "ab") as f:
                f.write(whole[cut : cut + 500])
        elif len(polls) == 2:
            with open(p, "ab") as f:
                f.write(whole[cut + 500 :])
        return found

    monkeypatch.setattr(wandb_offline, "records", records_then_writer_finishes)
    rows = read_history(path, timeout=60)
    assert polls == [False, False, True]
    assert [r["step"] for r in rows] == list(range(ROWS))


def test_an_unfinished_run_is_a_clear_error_after_the_timeout(tmp_path):
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(leveldb_log(run_payloads(5, finished=False)))
    with pytest.raises(RunNotFinished, match=r"run-abc.wandb has no exit record after 0.2 s \(6 complete records, "
                                             r"the last 'history'\): the run was not finished"):
        read_finished_run(path, timeout=0.2)
    with pytest.raises(RunNotFinished, match=r"missing.wandb has no exit record after 0.1 s \(no record\)"):
        read_finished_run(tmp_path / "missing.wandb", timeout=0.1)


def test_finish_and_flush_waits_for_the_service_to_write_the_file(tmp_path, monkeypatch):
    """A real offline run. W&B's client tells its service the run is over (inform_finish) without waiting, and
    only the service's close writes the end of the file: held here until the reader's first poll, so the reader
    deterministically meets what a loaded machine produces by chance, a file whose exit record is not written
    yet although finish() has returned. finish_and_flush returns only once every row and the exit record are
    there. The real file also re-encodes byte for byte (the format this module's reader assumes)."""
    import wandb
    from wandb.sdk.lib.service import service_connection

    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    real_inform_finish = service_connection.ServiceConnection.inform_finish
    held = []
    monkeypatch.setattr(service_connection.ServiceConnection, "inform_finish",
                        lambda self, run_id: held.append((self, run_id)))
    polls = []

    def records_then_service_closes(p):
        found = records(p)
        polls.append((len(history_rows(found)), is_finished(found)))
        if held:
            real_inform_finish(*held.pop())
        return found

    monkeypatch.setattr(wandb_offline, "records", records_then_service_closes)
    # flush interval 0: no periodic flush of the file while the test runs (the default is every 15 s)
    run = wandb.init(project="svdd-test", dir=str(tmp_path), mode="offline",
                     settings=wandb.Settings(x_transaction_log_flush_interval=0))
    for i in range(ROWS):
        run.log({"step_value": i, "values": list(range(100))})
    path = Path(run.settings.sync_file)
    finish_and_flush(run, timeout=60)
    found = records(path)  # what a `wandb sync` right after the command reads
    assert record_type(found[-1]) == "exit" and [r["step_value"] for r in history_rows(found)] == list(range(ROWS))
    # The waiting reader released the held close and returned once the file had everything; without the wait
    # the close would never come here and the file would end without its exit record (and, alone in its
    # service, without its last rows: the file's state at that moment varies, its end does not).
    assert not held and polls[-1] == (ROWS, True)
    assert leveldb_log(list(iter_payloads(path))) == path.read_bytes()
