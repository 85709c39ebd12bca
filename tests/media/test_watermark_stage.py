"""The watermark stage in a real run (embedded chain, SQLite file), and content.verified of marked copies."""
from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pipeline.records import Record, Signer
from pipeline.runner import run_pipeline
from pipeline.service import Service
from pipeline.settings import Settings
from pipeline.store import Store
from pipeline.verify import verify_file
from pipeline.watermark import payload_of
from copies import DEFEATED, SURVIVED

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"


def run(service: Service, *sources: Path):
    return asyncio.run(run_pipeline(service, [str(s) for s in sources]))


@pytest.fixture(scope="module")
def marked_run(tmp_path_factory):
    """One run with --watermark over two images, a text file and an icon too small to mark."""
    tmp = tmp_path_factory.mktemp("stage")
    media = tmp / "media"
    media.mkdir()
    for name in ("harbor.jpg", "shapes.png", "notes.txt"):
        shutil.copy(SAMPLES / name, media / name)
    Image.new("RGB", (100, 60), "teal").save(media / "icon.png")
    service = Service(Settings(data_dir=tmp / "state", watermark=True, batch_size=8, batch_interval=0.2))
    report = run(service, media)
    yield service, report, media
    service.close()


def record_named(report, name: str) -> Record:
    return next(r for r in report.registered if r.original_filename == name)


def test_each_image_gets_a_marked_copy_and_the_rest_a_one_line_reason(marked_run):
    service, report, media = marked_run
    assert sorted(r.original_filename for r in report.registered) == ["harbor.jpg", "icon.png", "notes.txt",
                                                                       "shapes.png"]
    assert report.errors == [f"{media / 'icon.png'}: too small to watermark (100x60; 128 px a side at least)"]
    harbor, shapes = record_named(report, "harbor.jpg"), record_named(report, "shapes.png")
    assert set(report.marked) == {harbor.id, shapes.id}
    for rec in (harbor, shapes):
        kept = service.store.watermark(rec.id)
        assert kept["payload"] == payload_of(rec.signature_hex).hex()
        assert Path(kept["path"]).parent == service.settings.marked_dir / rec.id and kept["psnr"] >= 38
        assert service.describe(rec.id)["watermark"] == kept
    assert service.store.watermark(record_named(report, "notes.txt").id) is None


def test_the_marked_copy_passes_all_four_checks(marked_run):
    service, report, _ = marked_run
    harbor = record_named(report, "harbor.jpg")
    data = verify_file(service, Path(service.store.watermark(harbor.id)["path"]))
    assert data["record_id"] == harbor.id and data["authentic"] is True and data["confidence"] == 1.0
    assert data["checks"]["watermark"] == {"passed": True, "details": "Payload matched, bit error rate 0.0% (0/128)"}
    assert data["checks"]["sha256"] == {"passed": True, "details": "Exact match (watermarked copy)"}
    assert data["checks"]["blockchain"]["passed"] is True


@pytest.mark.parametrize("change", [*SURVIVED, *DEFEATED])
def test_a_changed_copy_of_the_marked_copy(marked_run, tmp_path: Path, change: str):
    service, report, _ = marked_run
    harbor = record_named(report, "harbor.jpg")
    copy = tmp_path / f"{change}.png"
    with Image.open(service.store.watermark(harbor.id)["path"]) as marked:
        {**SURVIVED, **DEFEATED}[change](marked).convert("RGB").save(copy)
    data = verify_file(service, copy)
    checks = data["checks"]
    assert checks["sha256"]["passed"] is False
    if change in SURVIVED:
        assert checks["watermark"]["passed"] is True
        assert checks["watermark"]["details"].startswith("Payload matched, bit error rate ")
        assert data["record_id"] == harbor.id and data["authentic"] is True and checks["blockchain"]["passed"]
    else:  # the payload is lost; never a match to another record
        assert checks["watermark"] == {"passed": False, "details": "No payload matched (none within 6 of 128 bits)"}
        assert data["record_id"] in (harbor.id, None)


def test_a_rerun_marks_nothing_again_but_restores_a_missing_copy(marked_run):
    service, report, media = marked_run
    assert run(service, media / "harbor.jpg", media / "shapes.png").marked == {}
    shapes = record_named(report, "shapes.png")
    Path(service.store.watermark(shapes.id)["path"]).unlink()
    again = run(service, media / "shapes.png")
    assert list(again.marked) == [shapes.id] and Path(again.marked[shapes.id].path).is_file()


def test_a_marked_record_whose_signature_fails_does_not_pass_the_watermark_check(marked_run):
    service, report, _ = marked_run
    shapes = record_named(report, "shapes.png")
    path = Path(service.store.watermark(shapes.id)["path"])
    with service.store.transaction() as conn:
        conn.execute("UPDATE records SET signed_at = '2020-01-01T00:00:00Z' WHERE id = ?", (shapes.id,))
    try:
        checks = verify_file(service, path)["checks"]
    finally:
        with service.store.transaction() as conn:
            conn.execute("UPDATE records SET signed_at = ? WHERE id = ?", (shapes.signed_at, shapes.id))
    assert checks["watermark"] == {"passed": False,
                                   "details": "Payload matched, but the record's signature does not verify"}


SIGNER = Signer("Test", "news_agency", "test", "ed25519:test", "00")


def test_payload_lookup_finds_up_to_6_bit_errors_and_agrees_with_a_scan(tmp_path: Path):
    store = Store(tmp_path / "p.db")
    rng = random.Random(5)
    payloads = {}
    with store.transaction() as conn:
        for i in range(2000):
            rec = Record(id=f"r{i}", sha256=f"{i:064x}", blake3=f"{i:064x}", size=1, perceptual_hash=None,
                         phash_reason=None, mime="image/png", original_filename="x.png", source="x.png",
                         origin_type="digital_image", signed_at="2025-01-01T00:00:00Z", signature_hex="00",
                         signer=SIGNER, context=None, batch_id=None, leaf_index=None, blockchain_status="pending")
            store.insert_record(conn, rec)
            payloads[rec.id] = rng.randbytes(16)
            store.save_watermark(conn, rec.id, payloads[rec.id], f"m/{i}.png", f"{i:064x}", 1, 40.0)
    for record_id, payload in rng.sample(sorted(payloads.items()), 200):
        flips = rng.randint(0, 9)
        value = int.from_bytes(payload, "big")
        for bit in rng.sample(range(128), flips):
            value ^= 1 << bit
        query = value.to_bytes(16, "big")
        scan = min(((bin(int.from_bytes(p, "big") ^ value).count("1"), rid) for rid, p in payloads.items()))
        expected = (scan[1], scan[0]) if scan[0] <= 6 else None
        assert store.record_by_payload(query, 6) == expected, flips
        assert (expected is not None) == (flips <= 6)
    store.close()
