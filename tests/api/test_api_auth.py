"""API keys: 401 without a valid Bearer key, keys stored hashed, 403 on another tenant's objects."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest
from api_support import image_bytes, poll

from pipeline.api_auth import create_api_key
from pipeline.service import Service


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer psk_" + "x" * 32},
    {"Authorization": "Bearer not-even-the-prefix"},
    {"Authorization": "Basic YWNtZTpzZWNyZXQ="},
])
def test_requests_without_a_valid_key_get_401_json(api, headers):
    with api.server.client(None) as anonymous:
        for method, path in (("GET", "/api/v1/webhooks"), ("POST", "/api/v1/content"), ("GET", "/api/v1/records/x"),
                             ("POST", "/v0/provenance/register"), ("GET", "/api/v1/deliveries")):
            response = anonymous.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "API key" in response.json()["error"]


def test_keys_are_stored_as_sha256_only(api):
    conn = sqlite3.connect(api.server.settings.db)
    try:
        rows = conn.execute("SELECT tenant, key_hash FROM api_keys WHERE tenant IN ('acme', 'globex')"
                            " ORDER BY tenant").fetchall()
    finally:
        conn.close()
    assert [tenant for tenant, _ in rows] == ["acme", "globex"]
    for tenant, stored in rows:
        key = api.keys[tenant]
        assert key.startswith("psk_") and len(key) == 36
        assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert api.acme.get("/api/v1/webhooks").status_code == 200


def test_a_key_made_while_the_server_runs_works_at_once(api):
    service = Service(api.server.settings)
    try:
        key = create_api_key(service, "initech")
        with pytest.raises(ValueError, match="tenant"):
            create_api_key(service, "no spaces allowed")
    finally:
        service.close()
    with api.server.client(key) as initech:
        assert initech.get("/api/v1/webhooks").json() == []


def test_another_tenants_webhook_is_403_and_untouched(api):
    created = api.acme.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/acme"}).json()
    path = f"/api/v1/webhooks/{created['id']}"
    for response in (api.globex.get(path), api.globex.delete(path), api.globex.post(path + "/rotate"),
                     api.globex.get("/api/v1/deliveries", params={"endpoint": created["id"]})):
        assert response.status_code == 403
        assert "tenant" in response.json()["error"]
    assert created["id"] not in [w["id"] for w in api.globex.get("/api/v1/webhooks").json()]
    assert api.acme.get(path).json()["url"] == "http://127.0.0.1:9/acme"


def test_another_tenants_record_is_403_and_unknown_is_404(api):
    accepted = api.acme.post("/api/v1/content", files={"file": ("a.jpg", image_bytes(101), "image/jpeg")}).json()
    record = f"/api/v1/records/{accepted['record_id']}"
    assert api.acme.get(record).status_code == 200
    forbidden = api.globex.get(record)
    assert forbidden.status_code == 403 and "another tenant" in forbidden.json()["error"]
    missing = api.acme.get("/api/v1/records/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"].startswith("no record")


def test_each_tenant_registers_known_content_as_its_own_record(api):
    content = image_bytes(102)
    first = api.acme.post("/api/v1/content", files={"file": ("b.jpg", content, "image/jpeg")})
    theirs = api.globex.post("/api/v1/content", files={"file": ("b-copy.jpg", content, "image/jpeg"),
                                                       "context": (None, '{"secret": "globex"}')})
    again = api.acme.post("/api/v1/content", files={"file": ("b-again.jpg", content, "image/jpeg")})
    assert (first.status_code, theirs.status_code, again.status_code) == (202, 202, 200)
    assert again.json() == {"record_id": first.json()["record_id"], "status": "already_registered"}
    assert theirs.json()["record_id"] != first.json()["record_id"]
    mine = api.acme.get(f"/api/v1/records/{first.json()['record_id']}").json()
    assert mine["original_filename"] == "b.jpg" and mine["context"] is None
    assert api.acme.get(f"/api/v1/records/{theirs.json()['record_id']}").status_code == 403


def test_another_tenants_delivery_cannot_be_retried(api):
    api.acme.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/refused"})
    api.acme.post("/api/v1/content", files={"file": ("c.jpg", image_bytes(103), "image/jpeg")})
    deliveries = poll(lambda: {"rows": api.acme.get("/api/v1/deliveries").json()}, lambda r: r["rows"])["rows"]
    response = api.globex.post(f"/api/v1/deliveries/{deliveries[0]['id']}/retry")
    assert response.status_code == 403
    assert api.globex.get("/api/v1/deliveries").json() == []
