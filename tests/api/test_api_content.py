"""Registration by upload or URL: 202 pending, anchored in the background, announced to a Tectra receiver."""
from __future__ import annotations

import json

import pytest
from api_support import FileServer, WebhookReceiver, image_bytes, poll

from emitter.endpoint import new_secret


@pytest.fixture(scope="module")
def files(loop):
    """A file server with two images; anything else is 404."""
    server = FileServer(loop, {"photo.jpg": image_bytes(301), "other.jpg": image_bytes(302)})
    yield server
    server.stop()


def test_upload_is_anchored_and_announced_to_a_tectra_endpoint(api, loop):
    receiver = WebhookReceiver(loop, new_secret())
    try:
        endpoint = api.acme.post("/api/v1/webhooks", json={
            "url": receiver.url, "events": ["content.signed", "batch.anchored"]}).json()
        receiver.receiver.secrets = [endpoint["secret"]]
        response = api.acme.post("/api/v1/content", files={"file": ("harbor.jpg", image_bytes(303), "image/jpeg")},
                                 data={"context": json.dumps({"story": "s-1"}), "origin_type": "camera_image"})
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        record_id = response.json()["record_id"]

        record = poll(lambda: api.acme.get(f"/api/v1/records/{record_id}").json(),
                      lambda r: r["blockchain_status"] == "anchored")
        assert record["original_filename"] == "harbor.jpg" and record["origin_type"] == "camera_image"
        assert record["context"] == {"story": "s-1"}
        assert record["anchor"]["network"] == "embedded" and record["anchor"]["transaction_hash"].startswith("0x")
        assert record["batch"]["status"] == "anchored" and record["proof"]["root"] == record["batch"]["merkle_root"]

        def mine(got):
            """This record's content.signed and the batch.anchored listing it."""
            events = [json.loads(r.body) for r in got]
            return [e for e in events if e["data"].get("record_id") == record_id
                    or record_id in e["data"].get("record_ids", [])]

        receiver.wait_until(lambda got: len(mine(got)) >= 2)
        assert all(r.verified for r in receiver.receiver.received)
        signed, anchored = sorted(mine(receiver.receiver.received), key=lambda e: e["event"] != "content.signed")
        assert signed["event"] == "content.signed" and signed["data"]["blockchain_status"] == "pending"
        assert signed["data"]["sha256"] == record["sha256"]
        assert anchored["event"] == "batch.anchored"
        assert anchored["data"]["tx_hash"] == record["anchor"]["transaction_hash"]
        assert anchored["data"]["merkle_root"] == record["batch"]["merkle_root"]
    finally:
        receiver.stop()


def test_the_same_content_again_is_200_already_registered(api):
    content = image_bytes(304)
    first = api.acme.post("/api/v1/content", files={"file": ("one.jpg", content, "image/jpeg")})
    again = api.acme.post("/api/v1/content", files={"file": ("two.jpg", content, "image/jpeg")})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"record_id": first.json()["record_id"], "status": "already_registered"}


def test_a_url_is_fetched_and_registered(api, files):
    response = api.acme.post("/api/v1/content", json={"url": f"{files.url}/photo.jpg", "context": {"n": 1}})
    assert response.status_code == 202
    record = poll(lambda: api.acme.get(f"/api/v1/records/{response.json()['record_id']}").json(),
                  lambda r: r["blockchain_status"] == "anchored")
    assert record["original_filename"] == "photo.jpg" and record["context"] == {"n": 1}
    assert record["size"] == len(files.files["photo.jpg"])


def test_a_url_that_cannot_be_fetched_is_422_with_the_reason(api, files):
    missing = api.acme.post("/api/v1/content", json={"url": f"{files.url}/absent.jpg"})
    assert missing.status_code == 422
    assert missing.json() == {"error": f"{files.url}/absent.jpg: HTTP 404", "field": "url"}
    not_http = api.acme.post("/api/v1/content", json={"url": "file:///etc/hostname"})
    assert not_http.status_code == 422 and not_http.json()["field"] == "url"


@pytest.mark.parametrize("data, field", [
    ({"context": "{not json"}, "context"),
    ({"context": "[1, 2]"}, "context"),
    ({"origin_type": "has spaces"}, "origin_type"),
    ({"caption": "unknown"}, "caption"),
])
def test_bad_form_fields_are_422_naming_them(api, data, field):
    response = api.acme.post("/api/v1/content", files={"file": ("x.jpg", image_bytes(305), "image/jpeg")}, data=data)
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_an_upload_without_a_file_or_with_an_empty_one_is_422(api):
    no_file = api.acme.post("/api/v1/content", files={"context": (None, "{}")})
    assert no_file.status_code == 422 and no_file.json()["field"] == "file"
    empty = api.acme.post("/api/v1/content", files={"file": ("e.jpg", b"", "image/jpeg")})
    assert empty.status_code == 422 and "empty" in empty.json()["error"]


def test_a_file_that_is_not_media_is_still_registered(api):
    response = api.acme.post("/api/v1/content", files={"file": ("notes.txt", b"plain words\n", "text/plain")})
    assert response.status_code == 202
    record = api.acme.get(f"/api/v1/records/{response.json()['record_id']}").json()
    assert record["perceptual_hash"] is None and record["original_filename"] == "notes.txt"
