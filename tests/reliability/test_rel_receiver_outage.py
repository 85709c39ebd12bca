"""Receiver outages, real processes: down through the first retry waits then up; down for good then `provsim retry`."""
from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

from rel_support import ROYAL_SECRET, TECTRA_SECRET, Provsim, Receiver, deliveries, make_images, provsim

from emitter.dialects import royal, tectra


def attempts_so_far(db: Path) -> tuple[int, int]:
    """(deliveries, fewest attempts among them) in the outbox now; (0, 0) before the database has them."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            count, fewest = conn.execute("SELECT COUNT(*), MIN(attempts) FROM wh_deliveries").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0, 0
    return count, fewest or 0


def refused_twice(count: int, fewest: int) -> bool:
    """All four deliveries of the run exist and each has had its first two tries."""
    return count == 4 and fewest >= 2


def wait_for(condition, run: Provsim, timeout: float = 120) -> None:
    """Poll until `condition()` holds; fail if the run ends first or it takes longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.proc.poll() is None, "the run ended before the receiver came up"
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.05)


def gaps(attempts: list[dict]) -> list[float]:
    """Seconds between consecutive attempts."""
    return [b["at"] - a["at"] for a, b in zip(attempts, attempts[1:])]


def test_tectra_receiver_refusing_through_the_first_two_waits_gets_everything_on_the_third_try(tmp_path: Path):
    """Refused, refused, then 200: every delivery done on its third try, at +1 and +5 minutes (scaled)."""
    media, data, scale = tmp_path / "media", tmp_path / "state", 0.02
    make_images(media, 3, seed=31)
    rx = Receiver("tectra", TECTRA_SECRET)  # not listening yet: connections are refused
    with Provsim("run", str(media), "--endpoint", rx.url, "--secret", TECTRA_SECRET, "--batch-size", "3",
                 "--time-scale", str(scale), "--data-dir", str(data), "--json") as run:
        try:
            # 3 content.signed + 1 batch.anchored, each refused twice: now the receiver comes up.
            wait_for(lambda: refused_twice(*attempts_so_far(data / "provsim.db")), run)
            rx.start()
            done = run.finish()
        finally:
            rx.stop()
    assert json.loads(done.stdout)["exit_code"] == 0, done.stderr
    rows = deliveries(data)
    assert len(rows) == 4 and all(r["status"] == "delivered" for r in rows)
    for row in rows:
        attempts = row["attempts"]
        assert [a["n"] for a in attempts] == [1, 2, 3]
        assert all(a["status_code"] is None and "refused" in a["error"] for a in attempts[:2])
        assert attempts[2]["status_code"] == 200
        first, second = gaps(attempts)
        assert first >= tectra.RETRY_SCHEDULE[1] * scale and second >= tectra.RETRY_SCHEDULE[2] * scale
    got = rx.accepted()
    assert sorted(r.delivery_id for r in got) == sorted(r["id"] for r in rows), "each once, under its id"
    assert Counter(r.type for r in got) == {"content.signed": 3, "batch.anchored": 1}


def test_royal_receiver_answering_503_four_times_gets_everything_on_the_fifth_try_of_the_svix_schedule(tmp_path: Path):
    """503 four times, then 200: every message done on its fifth try, Svix's waits apart, one webhook-id."""
    media, data, scale = tmp_path / "media", tmp_path / "state", 0.0002
    make_images(media, 3, seed=32)
    with Receiver("royal", ROYAL_SECRET, fail_first=4) as rx:
        done = provsim("run", str(media), "--endpoint", rx.url, "--secret", ROYAL_SECRET, "--dialect", "royal",
                       "--batch-size", "3", "--time-scale", str(scale), "--data-dir", str(data), "--json")
    assert json.loads(done.stdout)["exit_code"] == 0, done.stderr
    rows = deliveries(data)
    assert Counter(r["event_type"] for r in rows) == {"provenance.registration.complete": 3,
                                                      "provenance.registration.nft_added": 3}
    for row in rows:
        attempts = row["attempts"]
        assert row["status"] == "delivered"
        assert [a["status_code"] for a in attempts] == [503, 503, 503, 503, 200]
        assert all(gap >= wait * scale for gap, wait in zip(gaps(attempts), royal.RETRY_SCHEDULE[1:]))
    tries = Counter(r.delivery_id for r in rx.requests)
    assert tries == {r["event_id"]: 5 for r in rows}, "every try carries the same webhook-id"
    assert all(r.verified for r in rx.requests)


def test_receivers_down_for_good_fail_after_every_try_then_retry_delivers_under_the_same_id(tmp_path: Path):
    """Both dialects use up their schedules and fail; `provsim retry` then delivers each under its own id."""
    media, data, scale = tmp_path / "media", tmp_path / "state", 0.00001
    make_images(media, 1, seed=33)
    with Receiver("tectra", TECTRA_SECRET, fail_first=99) as tx, \
            Receiver("royal", ROYAL_SECRET, fail_first=99) as rx:
        done = provsim("run", str(media), "--endpoint", tx.url, "--secret", TECTRA_SECRET,
                       "--endpoint", rx.url, "--secret", ROYAL_SECRET, "--dialect", "tectra", "--dialect", "royal",
                       "--time-scale", str(scale), "--data-dir", str(data), "--json")
        report = json.loads(done.stdout)
        failed = deliveries(data)
        tx.fail_first = rx.fail_first = 0
        retried = [provsim("retry", row["id"], "--data-dir", str(data)) for row in failed]
        after = {row["id"]: row for row in deliveries(data)}
    assert report["exit_code"] == 1 and report["deliveries"]["failed"] == len(failed) == 4
    schedule = {"tectra": tectra.RETRY_SCHEDULE, "royal": royal.RETRY_SCHEDULE}
    for row in failed:
        dialect = "royal" if row["event_type"].startswith("provenance.") else "tectra"
        attempts = row["attempts"]
        assert row["status"] == "failed"
        assert [a["status_code"] for a in attempts] == [503] * len(schedule[dialect])
        assert all(gap >= wait * scale for gap, wait in zip(gaps(attempts), schedule[dialect][1:]))
    for row, proc in zip(failed, retried):
        assert f"{row['id']}: delivered" in proc.stdout, proc.stderr
        assert after[row["id"]]["status"] == "delivered"
        assert [a["status_code"] for a in after[row["id"]]["attempts"]][-1] == 200
        assert len(after[row["id"]]["attempts"]) == len(row["attempts"]) + 1
    tectra_rows = [r for r in failed if not r["event_type"].startswith("provenance.")]
    assert sorted(r.delivery_id for r in tx.accepted()) == sorted(r["id"] for r in tectra_rows)
    royal_rows = [r for r in failed if r["event_type"].startswith("provenance.")]
    assert sorted(r.delivery_id for r in rx.accepted()) == sorted(r["event_id"] for r in royal_rows)
    assert all(len([q for q in tx.requests if q.delivery_id == r["id"]]) == 4 for r in tectra_rows)
