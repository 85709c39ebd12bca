"""A full disk and a read-only database: one clear line, no corruption, and the same command completes afterwards.

The disk fills for the provsim process alone: RLIMIT_FSIZE caps the size of every file it writes (with
SIGXFSZ ignored, an oversize write fails with EFBIG, which SQLite reports as a disk I/O error), so no
mount rights are needed. A read-only database is made with file modes (0444 on the file, 0555 on its
directory); run as root, the process first drops the capabilities that let root write anyway
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, from its bounding set before exec), so the
kernel enforces the modes as it would for any user.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from rel_support import TECTRA_SECRET, Receiver, integrity, make_images, provsim

PR_CAPBSET_DROP = 24
ROOT_OVERRIDES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def file_size_limit(limit: int):
    """A preexec_fn that lets the process write no file beyond `limit` bytes."""
    def limit_writes() -> None:
        """Ignore SIGXFSZ (the write fails instead) and cap file sizes."""
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


def without_root_overrides() -> None:
    """As root, drop the capabilities that ignore file modes before exec; as anyone else, nothing to do."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in ROOT_OVERRIDES:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop a capability from the bounding set")


def error_lines(stderr: str) -> list[str]:
    """The lines of a command's standard error that report an error."""
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def audit(data: Path, rx: Receiver) -> tuple[int, set[str], dict]:
    """(records, statuses of batches and deliveries, delivery ids received per record) after a run."""
    conn = sqlite3.connect(f"file:{data / 'provsim.db'}?mode=ro", uri=True)
    try:
        records = conn.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM records").fetchone()
        statuses = {f"batch {s}" for (s,) in conn.execute("SELECT DISTINCT status FROM batches")} | \
                   {f"delivery {s}" for (s,) in conn.execute("SELECT DISTINCT status FROM wh_deliveries")} | \
                   {f"record {s}" for (s,) in conn.execute("SELECT DISTINCT blockchain_status FROM records")}
    finally:
        conn.close()
    assert records[0] == records[1], "content registered twice"
    ids = defaultdict(set)
    for r in rx.accepted("content.signed"):
        ids[r.event["data"]["record_id"]].add(r.delivery_id)
    return records[0], statuses, ids


def test_a_full_disk_stops_the_run_in_one_line_keeps_the_database_sound_and_the_rerun_completes(tmp_path: Path):
    """Writes over the size limit fail mid-run: one error line, a sound database, and the rerun completes."""
    first, more, data = tmp_path / "first", tmp_path / "more", tmp_path / "state"
    make_images(first, 4, seed=41)
    make_images(more, 40, seed=42)
    with Receiver("tectra", TECTRA_SECRET) as rx:
        args = ["--endpoint", rx.url, "--secret", TECTRA_SECRET, "--batch-size", "4", "--time-scale", "0.001",
                "--data-dir", str(data)]
        assert provsim("run", str(first), *args).returncode == 0
        db = data / "provsim.db"
        full = provsim("run", str(first), str(more), *args, preexec_fn=file_size_limit(db.stat().st_size + 8192))
        checked = integrity(db)
        again = provsim("run", str(first), str(more), *args, "--json")
        records, statuses, ids = audit(data, rx)
    [line] = error_lines(full.stderr)
    assert full.returncode == 3 and "Traceback" not in full.stderr, full.stderr
    assert f"database {db} refused a write" in line and "run the same command again" in line
    assert checked == ["ok"]
    report = json.loads(again.stdout)
    assert report["exit_code"] == 0, again.stderr
    assert len(report["registered"]) + len(report["already_registered"]) == 44
    assert records == 44 and statuses == {"batch anchored", "delivery delivered", "record anchored"}
    assert len(ids) == 44 and all(len(v) == 1 for v in ids.values()), "every record announced, under one id"
    assert integrity(db) == ["ok"]


def root_overrides_can_be_dropped() -> bool:
    """Whether this process may start a child without the capabilities that ignore file modes."""
    try:
        subprocess.run(["true"], preexec_fn=without_root_overrides, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@pytest.mark.parametrize("read_only", ["database file", "data directory"])
def test_a_read_only_database_is_one_line_changes_nothing_and_the_run_completes_once_writable(
        tmp_path: Path, read_only: str):
    """A read-only database file or directory: one error line, nothing written, then a complete run."""
    if not root_overrides_can_be_dropped():
        pytest.skip("running as root without CAP_SETPCAP: file modes cannot be enforced on this process")
    first, more, data = tmp_path / "first", tmp_path / "more", tmp_path / "state"
    make_images(first, 3, seed=51)
    make_images(more, 6, seed=52)
    with Receiver("tectra", TECTRA_SECRET) as rx:
        args = ["--endpoint", rx.url, "--secret", TECTRA_SECRET, "--batch-size", "4", "--data-dir", str(data)]
        assert provsim("run", str(first), *args).returncode == 0
        db = data / "provsim.db"
        target = db if read_only == "database file" else data
        mode = target.stat().st_mode
        target.chmod(0o444 if target == db else 0o555)
        try:
            refused = provsim("run", str(first), str(more), *args, preexec_fn=without_root_overrides)
        finally:
            target.chmod(mode)
        checked = integrity(db)
        before = audit(data, rx)
        again = provsim("run", str(first), str(more), *args, "--json")
        records, statuses, ids = audit(data, rx)
    [line] = error_lines(refused.stderr)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert str(data) in line and ("Permission denied" in line or "readonly" in line)
    assert checked == ["ok"] and before[0] == 3, "nothing was written"
    assert json.loads(again.stdout)["exit_code"] == 0, again.stderr
    assert records == 9 and statuses == {"batch anchored", "delivery delivered", "record anchored"}
    assert len(ids) == 9 and all(len(v) == 1 for v in ids.values())


@pytest.mark.parametrize("command, table", [("verify", "wh_events"), ("endpoint add", "wh_endpoints")])
def test_other_commands_refused_a_write_say_so_in_one_line_and_exit_3(tmp_path: Path, command: str, table: str):
    """Not only `run`: a command whose write the database refuses ends in one line, and works once it can write.

    The refusal is the database's own: a trigger that aborts every insert into the table the command writes.
    """
    media, data = tmp_path / "media", tmp_path / "state"
    make_images(media, 1, seed=61)
    [image] = media.iterdir()
    assert provsim("run", str(media), "--data-dir", str(data)).returncode == 0
    db = data / "provsim.db"
    args = [*command.split(), str(image) if command == "verify" else "http://127.0.0.1:9/hook", "--data-dir", str(data)]
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'no room'); END")
    refused = provsim(*args)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER refuse")
    [line] = error_lines(refused.stderr)
    assert refused.returncode == 3 and "Traceback" not in refused.stderr, refused.stderr
    assert line.endswith(f"database {db} refused a write (no room): the command stopped; everything committed"
                         " before is kept: free space or make it writable, then run the same command again")
    assert integrity(db) == ["ok"]
    assert provsim(*args).returncode == 0
