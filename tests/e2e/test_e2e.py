"""End to end: the real CLI registers media, anchors batches and delivers seed-verifiable webhooks."""
from __future__ import annotations

import json
from pathlib import Path

from e2e_support import make_images, provsim
from seed_receiver import SeedReceiver
from shapes import schema_errors, shape_errors

SECRET = "whsec_" + "c2VlZC1yZWNlaXZlci10ZXN0LXNlY3JldC0zMmJ5dGVz"


def test_run_delivers_every_event_verified_with_the_seed_logic(tmp_path: Path, media: Path):
    data = tmp_path / "state"
    with SeedReceiver(SECRET) as rx:
        proc = provsim("run", str(media), "--endpoint", rx.url, "--secret", SECRET, "--batch-size", "5",
                       "--batch-interval", "30", "--data-dir", str(data), "--json")
        report = json.loads(proc.stdout)
        signed = rx.events("content.signed")
        anchored = rx.events("batch.anchored")
        assert all(d.verified for d in rx.deliveries), "every delivery verifies with the seed's code"
    assert report["exit_code"] == 0 and report["errors"] == []
    assert len(report["registered"]) == 13
    assert [b["leaf_count"] for b in report["batches"]] == [5, 5, 3]
    assert report["deliveries"].get("delivered") == 16 and not report["deliveries"].get("failed")
    assert {d.event["data"]["record_id"] for d in signed} == {r["record_id"] for r in report["registered"]}
    assert len(anchored) == 3
    for d in rx.deliveries:
        assert shape_errors(d.event) == [] and schema_errors(d.event) == []
        assert d.headers["X-Tectra-Event"] == d.event["event"]
        assert d.headers["X-Tectra-Timestamp"] == d.event["timestamp"]
        assert d.headers["X-Tectra-Delivery"]
    assert len({d.headers["X-Tectra-Delivery"] for d in rx.deliveries}) == 16
    notes = next(d.event["data"] for d in signed if d.event["data"]["original_filename"] == "notes.txt")
    assert notes["perceptual_hash"] is None and notes["blockchain_status"] == "pending"
    batch_records = sorted(rid for d in anchored for rid in d.event["data"]["record_ids"])
    assert batch_records == sorted(r["record_id"] for r in report["registered"])
    for d in anchored:
        ev = d.event["data"]
        assert ev["merkle_root"].startswith("0x") and len(ev["merkle_root"]) == 66
        assert ev["tx_hash"].startswith("0x") and len(ev["tx_hash"]) == 66
        assert ev["network"] == "embedded" and ev["block_number"] >= 1


def test_verify_after_restart_checks_the_proof_on_the_replayed_chain(tmp_path: Path):
    data, media = tmp_path / "state", tmp_path / "media"
    make_images(media, 5, size=(256, 192))  # large enough to carry a watermark
    provsim("run", str(media), "--batch-size", "4", "--watermark", "--data-dir", str(data))
    marked = next((data / "marked").glob("*/img_0003.marked.jpg"))
    with SeedReceiver(SECRET) as rx:
        proc = provsim("verify", str(media / "img_0003.jpg"), str(marked), "--endpoint", rx.url, "--secret", SECRET,
                       "--data-dir", str(data), "--json")
        original, copy = json.loads(proc.stdout)
        deliveries = rx.events("content.verified")
    assert original["authentic"] is True and original["confidence"] == 0.75
    assert original["checks"]["sha256"] == {"passed": True, "details": "Exact match"}
    assert original["checks"]["perceptual_hash"] == {"passed": True, "details": "Distance 0"}
    assert original["checks"]["blockchain"]["passed"] is True
    assert original["checks"]["watermark"] == {"passed": False,
                                               "details": "No payload matched (none within 6 of 128 bits)"}
    # The marked copy: its payload leads to the same record, and its own SHA-256 is an exact match too.
    assert copy["record_id"] == original["record_id"] and copy["confidence"] == 1.0
    assert copy["checks"]["watermark"] == {"passed": True, "details": "Payload matched, bit error rate 0.0% (0/128)"}
    assert copy["checks"]["sha256"] == {"passed": True, "details": "Exact match (watermarked copy)"}
    assert [shape_errors(d.event) for d in deliveries] == [[], []]
    assert [d.event["data"] for d in deliveries] == [
        {k: v for k, v in r.items() if k != "file"} for r in (original, copy)]


def test_proof_command_prints_the_oz_shape(tmp_path: Path, media: Path):
    data = tmp_path / "state"
    report = json.loads(provsim("run", str(media), "--batch-size", "8", "--data-dir", str(data), "--json").stdout)
    rid = report["registered"][2]["record_id"]
    proof = json.loads(provsim("proof", rid, "--data-dir", str(data), "--json").stdout)
    assert set(proof) == {"root", "leaf", "proof"}
    assert proof["leaf"]["types"] == ["bytes32", "bytes32", "bytes32"]
    assert proof["leaf"]["values"][0] == "0x" + report["registered"][2]["sha256"]
    assert proof["root"] in {b["merkle_root"] for b in report["batches"]}
    missing = provsim("proof", "no-such-record", "--data-dir", str(data), check=False)
    assert missing.returncode == 2 and "no-such-record: not found" in missing.stderr
