"""The service commits each state change with its outbox rows, or neither."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from emitter import outbox
from emitter.endpoint import Endpoint
from pipeline.analyze import analyze_file
from pipeline.lifecycle import settle
from pipeline.service import Service
from pipeline.settings import Settings
from pipeline.verify import signature_valid, verify_file

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"


@pytest.fixture
def service(tmp_path: Path):
    svc = Service(Settings(data_dir=tmp_path))
    svc.add_transient_endpoints([Endpoint.new("http://127.0.0.1:9/", secret="whsec_x", persistent=False)])
    yield svc
    svc.close()


def analysis(name: str):
    return analyze_file(str(SAMPLES / name), 50 << 20, 500 << 20)


def test_register_stores_the_record_and_its_event_together(service: Service):
    rec, event_id = service.register(analysis("harbor.jpg"), "harbor.jpg", "harbor.jpg")
    assert service.store.record(rec.id) == rec
    [row] = outbox.list_deliveries(service.store.conn)
    assert row["event_id"] == event_id and row["event_type"] == "content.signed"
    assert signature_valid(rec)


def test_a_failed_transaction_leaves_neither_record_nor_event(service: Service, monkeypatch):
    def broken_enqueue(*args, **kwargs):
        raise RuntimeError("disk went away")

    monkeypatch.setattr(outbox, "enqueue", broken_enqueue)
    with pytest.raises(RuntimeError):
        service.register(analysis("harbor.jpg"), "harbor.jpg", "harbor.jpg")
    assert service.store.records() == []
    assert outbox.list_deliveries(service.store.conn) == []


def test_registering_the_same_content_again_returns_the_first_record(service: Service):
    first, event_id = service.register(analysis("rings.jpg"), "a/rings.jpg", "rings.jpg")
    again, none = service.register(analysis("rings.jpg"), "b/rings.jpg", "rings.jpg")
    assert none is None and again.id == first.id and event_id is not None


def test_tampered_signature_fails_the_content_checks(service: Service):
    rec, _ = service.register(analysis("shapes.png"), "shapes.png", "shapes.png")
    service.close_batch([rec.id])
    asyncio.run(settle(service))
    bad = "00" * 64
    service.store.conn.execute("UPDATE records SET signature_hex = ? WHERE id = ?", (bad, rec.id))
    result = verify_file(service, SAMPLES / "shapes.png")
    assert result["checks"]["sha256"]["passed"] is False
    assert "signature does not verify" in result["checks"]["sha256"]["details"]
    assert result["checks"]["blockchain"]["passed"] is False, "the leaf commits to the signature"


def test_unknown_content_is_not_authentic(service: Service):
    result = verify_file(service, SAMPLES / "gradient.png")
    assert result == {
        "authentic": False, "confidence": 0.0, "record_id": None, "signer": None,
        "checks": {
            "watermark": {"passed": False, "details": "No payload matched (none within 6 of 128 bits)"},
            "sha256": {"passed": False, "details": "No record with this SHA-256"},
            "perceptual_hash": {"passed": False, "details": "No record with a perceptual hash"},
            "blockchain": {"passed": False, "details": "No matching record"},
        },
    }
