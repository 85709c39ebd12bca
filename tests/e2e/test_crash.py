"""A run killed with SIGKILL and started again on the same database loses nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from e2e_support import ROOT, make_images, provsim
from seed_receiver import SeedReceiver

SECRET = "whsec_" + "Y3Jhc2gtdGVzdC1zZWNyZXQtdGhpcnR5LXR3by1ieXRlcw=="


def test_kill_9_mid_run_then_restart_delivers_every_accepted_event(tmp_path: Path):
    media = tmp_path / "media"
    make_images(media, 60, seed=11)
    data = tmp_path / "state"
    with SeedReceiver(SECRET, delay=0.03) as rx:
        args = ["run", str(media), "--endpoint", rx.url, "--secret", SECRET, "--batch-size", "8",
                "--batch-interval", "0.5", "--data-dir", str(data)]
        first = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(rx.events()) < 10 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        assert first.poll() is None, "the first run must still be going when it is killed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        seen_before_restart = len(rx.deliveries)

        second = provsim(*args, "--json")
        report = json.loads(second.stdout)
        assert report["exit_code"] == 0, second.stderr

        db_state = json.loads(provsim("deliveries", "--data-dir", str(data), "--json").stdout)
        signed = rx.events("content.signed")
        anchored = rx.events("batch.anchored")

    assert 0 < seen_before_restart < 60 + 8
    # Every registered record is stored once, in exactly one anchored batch.
    records = {r["record_id"] for r in report["registered"]} | {r["record_id"] for r in report["already_registered"]}
    assert len(records) == 60
    batch_members = [rid for d in anchored for rid in d.event["data"]["record_ids"]]
    assert sorted(set(batch_members)) == sorted(records)
    roots = {d.event["data"]["merkle_root"] for d in anchored}
    assert len(roots) == len({d.event["data"]["batch_id"] for d in anchored}), "one anchor per batch"
    # Every accepted event was delivered; a duplicate always carries the same delivery id.
    assert {d.event["data"]["record_id"] for d in signed} == records
    ids_by_record = defaultdict(set)
    for d in signed:
        ids_by_record[d.event["data"]["record_id"]].add(d.headers["X-Tectra-Delivery"])
    assert all(len(ids) == 1 for ids in ids_by_record.values())
    assert all(row["status"] == "delivered" for row in db_state)
    # Each record's proof still verifies on the (replayed) embedded chain.
    some = sorted(records)[0]
    proof = json.loads(provsim("proof", some, "--data-dir", str(data), "--json").stdout)
    assert proof["root"] in roots
