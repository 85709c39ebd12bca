"""Royal's register call and the four Royal events it causes, delivered to a Royal endpoint made through the API."""
from __future__ import annotations

import json

import blake3

import pytest
from api_support import FileServer, WebhookReceiver, image_bytes, poll

from emitter.endpoint import new_secret
from pipeline import royal_events


@pytest.fixture(scope="module")
def files(loop):
    """A file server with the images the Royal tests register."""
    server = FileServer(loop, {f"royal-{i}.jpg": image_bytes(400 + i) for i in range(4)})
    yield server
    server.stop()


def test_register_delivers_hashed_submitted_complete_and_nft_added_with_context(api, loop, files):
    receiver = WebhookReceiver(loop, new_secret(), dialect="royal")
    try:
        endpoint = api.acme.post("/api/v1/webhooks", json={"url": receiver.url, "dialect": "royal"}).json()
        receiver.receiver.secrets = [endpoint["secret"]]
        context = {"user_id": "12345", "transaction_ref": "tx_abc123"}
        response = api.acme.post("/v0/provenance/register", json={
            "originator_id": "42", "file_url": f"{files.url}/royal-0.jpg", "name": "sunrise.jpg", "context": context})
        assert response.status_code == 202
        record_id = response.json()["id"]

        def mine(got):
            """The Royal events about this registration, by type."""
            events = [json.loads(r.body) for r in got]
            return {e["type"]: e["data"] for e in events if e["data"].get("context") == context}

        receiver.wait_until(lambda got: set(mine(got)) == set(royal_events.ROYAL_EVENTS))
        assert all(r.verified for r in receiver.receiver.received)
        events = mine(receiver.receiver.received)
        record = api.acme.get(f"/api/v1/records/{record_id}").json()
        assert record["original_filename"] == "sunrise.jpg"
        assert events[royal_events.HASHED] == {"context": context, "provenance": {"content_hash": record["blake3"]}}
        submitted_tx = events[royal_events.SUBMITTED]["transaction"]["transaction_hash"]
        complete = events[royal_events.COMPLETE]
        assert complete["provenance"]["id"] == record_id
        assert complete["provenance"]["originator"] == {"number": "42", "username": "user-42"}
        assert complete["transaction"]["transaction_hash"] == submitted_tx == record["anchor"]["transaction_hash"]
        assert complete["transaction"]["removed"] is False
        nft = events[royal_events.NFT_ADDED]["provenance"]["nft"]
        shown = poll(lambda: api.acme.get(f"/api/v1/records/{record_id}").json(), lambda r: r["nft"] is not None)
        assert nft == {"address": shown["nft"]["contract"], "id": shown["nft"]["token_id"]}
    finally:
        receiver.stop()


def test_an_integer_originator_id_is_accepted(api, files):
    response = api.acme.post("/v0/provenance/register", json={
        "originator_id": 7, "file_url": f"{files.url}/royal-1.jpg"})
    assert response.status_code == 202 and set(response.json()) == {"id"}


def test_registering_by_content_hash_alone_runs_the_whole_lifecycle_and_verifies_the_file(api, loop):
    content = image_bytes(450)
    blake3 = blake3_hex(content)
    receiver = WebhookReceiver(loop, new_secret(), dialect="royal")
    try:
        endpoint = api.acme.post("/api/v1/webhooks", json={"url": receiver.url, "dialect": "royal"}).json()
        receiver.receiver.secrets = [endpoint["secret"]]
        context = {"by": "hash"}
        response = api.acme.post("/v0/provenance/register", json={
            "originator_id": "9", "content_hash": "0x" + blake3.upper(), "context": context})
        assert response.status_code == 202
        record_id = response.json()["id"]

        def mine(got):
            """The Royal events about this registration, by type."""
            return {e["type"]: e["data"] for e in (json.loads(r.body) for r in got) if e["data"].get("context") == context}

        receiver.wait_until(lambda got: set(mine(got)) == set(royal_events.ROYAL_EVENTS))
        events = mine(receiver.receiver.received)
        assert all(data["provenance"]["content_hash"] == blake3 for data in events.values())
        assert events[royal_events.COMPLETE]["provenance"]["id"] == record_id
        record = api.acme.get(f"/api/v1/records/{record_id}").json()
        assert record["sha256"] is None and record["blake3"] == blake3 and record["proof"] is not None
        again = api.acme.post("/v0/provenance/register", json={"originator_id": "9", "content_hash": blake3})
        assert again.status_code == 200 and again.json() == {"id": record_id, "status": "already_registered"}

        verified = api.acme.post("/api/v1/verify", files={"file": ("same.jpg", content, "image/jpeg")}).json()
        assert verified["record_id"] == record_id
        assert verified["checks"]["sha256"] == {"passed": True,
                                                "details": "Exact match (BLAKE3: registered by content hash)"}
        assert verified["checks"]["blockchain"]["passed"] is True
    finally:
        receiver.stop()


def blake3_hex(content: bytes) -> str:
    """BLAKE3 of some bytes as lowercase hex."""
    return blake3.blake3(content).hexdigest()


@pytest.mark.parametrize("body, field", [
    ({"originator_id": "1"}, "file_url"),
    ({"originator_id": "1", "content_hash": "ab" * 31}, "content_hash"),
    ({"originator_id": "1", "content_hash": "zz" * 32}, "content_hash"),
])
def test_a_registration_without_a_file_or_a_good_hash_is_refused(api, body, field):
    response = api.acme.post("/v0/provenance/register", json=body)
    assert response.status_code == 422 and response.json()["field"] == field


def test_a_content_hash_that_does_not_match_the_file_is_refused(api, files):
    response = api.acme.post("/v0/provenance/register", json={
        "originator_id": "1", "file_url": f"{files.url}/royal-2.jpg", "content_hash": "0x" + "00" * 32})
    assert response.status_code == 422 and response.json()["field"] == "content_hash"


@pytest.mark.parametrize("originator_id", ["-1", "12a", "", True, 1.5, None, -3])
def test_bad_originator_ids_are_422(api, files, originator_id):
    response = api.acme.post("/v0/provenance/register", json={
        "originator_id": originator_id, "file_url": f"{files.url}/royal-3.jpg"})
    assert response.status_code == 422
    assert response.json()["field"] == "originator_id" and "Royal id" in response.json()["error"]


def test_unknown_fields_and_unreachable_files_are_422(api, files):
    extra = api.acme.post("/v0/provenance/register", json={
        "originator_id": "1", "file_url": f"{files.url}/royal-3.jpg", "owner": "x"})
    assert extra.status_code == 422 and extra.json()["field"] == "owner"
    missing = api.acme.post("/v0/provenance/register", json={"originator_id": "1", "file_url": f"{files.url}/nope.jpg"})
    assert missing.status_code == 422 and missing.json()["field"] == "file_url"
    assert "HTTP 404" in missing.json()["error"]
