"""Webhook registration in Tectra's shape: create, list, show, delete, rotate; bad events and URLs refused."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from api_support import WebhookReceiver, image_bytes

from emitter.endpoint import new_secret
from pipeline.royal_events import ROYAL_EVENTS
from pipeline.tectra_events import TECTRA_EVENTS


def test_create_returns_the_secret_once_and_list_and_get_never_do(api):
    response = api.acme.post("/api/v1/webhooks", json={
        "url": "https://example.com/webhooks/tectra", "events": ["content.signed", "batch.anchored"]})
    assert response.status_code == 201
    created = response.json()
    assert created["id"].startswith("ep_") and created["secret"].startswith("whsec_")
    assert created["url"] == "https://example.com/webhooks/tectra"
    assert created["events"] == ["content.signed", "batch.anchored"]
    assert created["dialect"] == "tectra" and created["created_at"].endswith("Z")
    shown = api.acme.get(f"/api/v1/webhooks/{created['id']}").json()
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = api.acme.get("/api/v1/webhooks").json()
    assert shown in listed and all("secret" not in w for w in listed)


def test_events_default_to_every_event_of_the_dialect(api):
    tectra = api.acme.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/t"}).json()
    royal = api.acme.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/r", "dialect": "royal"}).json()
    assert tectra["events"] == list(TECTRA_EVENTS)
    assert royal["events"] == list(ROYAL_EVENTS) and royal["dialect"] == "royal"


def test_delete_removes_it_for_good(api):
    created = api.acme.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/gone"}).json()
    path = f"/api/v1/webhooks/{created['id']}"
    deleted = api.acme.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.acme.get(path).status_code == 404
    assert api.acme.delete(path).status_code == 404
    assert created["id"] not in [w["id"] for w in api.acme.get("/api/v1/webhooks").json()]


@pytest.mark.parametrize("body, field, words", [
    ({"url": "http://127.0.0.1:9/", "events": ["content.signed", "content.deleted"]}, "events", "content.deleted"),
    ({"url": "http://127.0.0.1:9/", "events": ["provenance.registration.complete"]}, "events", "unknown tectra event"),
    ({"url": "http://127.0.0.1:9/", "dialect": "royal", "events": ["batch.anchored"]}, "events", "unknown royal event"),
    ({"url": "http://127.0.0.1:9/", "events": []}, "events", "at least 1"),
    ({"url": "http://127.0.0.1:9/", "events": "content.signed"}, "events", "list"),
    ({"url": "http://127.0.0.1:9/", "dialect": "svix"}, "dialect", "tectra"),
    ({"url": "ftp://example.com/hook"}, "url", "http"),
    ({"url": "not a url"}, "url", "http"),
    ({"url": "http:///no-host"}, "url", "host"),
    ({"events": ["content.signed"]}, "url", "required"),
    ({"url": "http://127.0.0.1:9/", "secret": "whsec_mine"}, "secret", "unknown field"),
])
def test_bad_registrations_are_422_naming_the_field(api, body, field, words):
    response = api.acme.post("/api/v1/webhooks", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert words in response.json()["error"]


def test_rotation_gives_a_new_secret_that_signs_the_next_deliveries(api, loop):
    tectra_rx = WebhookReceiver(loop, new_secret())
    royal_rx = WebhookReceiver(loop, new_secret(), dialect="royal")
    try:
        tectra = api.acme.post("/api/v1/webhooks", json={"url": tectra_rx.url, "events": ["content.verified"]}).json()
        royal = api.acme.post("/api/v1/webhooks", json={
            "url": royal_rx.url, "dialect": "royal", "events": ["provenance.registration.hashed"]}).json()
        rotated = {ep["id"]: api.acme.post(f"/api/v1/webhooks/{ep['id']}/rotate") for ep in (tectra, royal)}
        assert all(r.status_code == 200 for r in rotated.values())
        fresh = {ep_id: r.json()["secret"] for ep_id, r in rotated.items()}
        assert fresh[tectra["id"]] != tectra["secret"] and fresh[royal["id"]] != royal["secret"]
        assert "secret" not in api.acme.get(f"/api/v1/webhooks/{tectra['id']}").json()
        tectra_rx.receiver.secrets = [fresh[tectra["id"]]]  # Tectra's one signature uses the new secret
        royal_rx.receiver.secrets = [royal["secret"]]  # Royal signs with the old one too for 24 hours

        content = image_bytes(201)
        assert api.acme.post("/api/v1/content", files={"file": ("r.jpg", content, "image/jpeg")}).status_code == 202
        assert api.acme.post("/api/v1/verify", files={"file": ("r.jpg", content, "image/jpeg")}).status_code == 200
        # Only this endpoint's secret counts: a port freed by an earlier test's receiver can be this one's now,
        # and retries meant for that receiver then land here, signed with its secret. At-least-once: a delivery
        # may arrive again, always under its own id.
        verified, *again = [r for r in tectra_rx.wait_until(lambda got: any(r.verified for r in got)) if r.verified]
        hashed, *also = [r for r in royal_rx.wait_until(lambda got: any(r.verified for r in got)) if r.verified]
        assert {r.delivery_id for r in again} <= {verified.delivery_id}
        assert {r.delivery_id for r in also} <= {hashed.delivery_id}
        assert verified.event_type == "content.verified" and verified.verified
        old_signature = hmac.new(tectra["secret"].encode(), verified.body, hashlib.sha256).hexdigest()
        assert verified.headers["X-Tectra-Signature"] != old_signature
        assert hashed.event_type == "provenance.registration.hashed" and hashed.verified
        assert len(hashed.headers["webhook-signature"].split(" ")) == 2
    finally:
        tectra_rx.stop()
        royal_rx.stop()


def test_malformed_bodies_are_4xx_json(api):
    cases = [
        (b'{"url": ', "application/json", 400),
        (b"[1, 2]", "application/json", 422),
        (b"", "application/json", 400),
        (json.dumps({"url": "http://127.0.0.1:9/"}).encode(), "text/plain", 415),
        (b"url=http://127.0.0.1:9/", "application/x-www-form-urlencoded", 415),
        (b"\xff\xfe{}", "application/json", 400),
    ]
    for body, content_type, status in cases:
        response = api.acme.post("/api/v1/webhooks", content=body, headers={"Content-Type": content_type})
        assert response.status_code == status, (body, content_type, response.text)
        assert response.json()["error"]
