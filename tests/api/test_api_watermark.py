"""`provsim serve --watermark`: uploads get a marked copy, its owner downloads it, and a copy of it verifies."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_support import ApiServer, image_bytes, make_keys, poll, server_settings
from PIL import Image

HARBOR = Path(__file__).resolve().parents[2] / "sample_media" / "harbor.jpg"  # a photo-like 1024x768 JPEG


@pytest.fixture(scope="module")
def marking_api(tmp_path_factory):
    """A server with the watermark stage on, and clients for tenants acme and globex."""
    settings = server_settings(tmp_path_factory.mktemp("api-marking"), watermark=True)
    keys = make_keys(settings, "acme", "globex")
    server = ApiServer(settings).start()
    clients = {tenant: server.client(key) for tenant, key in keys.items()}
    yield server, clients
    for client in clients.values():
        client.close()
    server.stop()


def test_an_upload_gets_a_marked_copy_that_its_owner_alone_downloads_and_that_verifies(marking_api):
    server, clients = marking_api
    acme = clients["acme"]
    original = HARBOR.read_bytes()
    record_id = acme.post("/api/v1/content", files={"file": ("m.jpg", original, "image/jpeg")}).json()["record_id"]
    shown = poll(lambda: acme.get(f"/api/v1/records/{record_id}").json(),
                 lambda r: r["blockchain_status"] == "anchored")
    assert shown["watermark"]["url"] == f"/api/v1/records/{record_id}/marked"
    assert "path" not in shown["watermark"] and str(server.settings.data_dir) not in str(shown)

    download = acme.get(shown["watermark"]["url"])
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    assert download.content != original
    assert clients["globex"].get(shown["watermark"]["url"]).status_code == 403

    smaller = io.BytesIO()
    Image.open(io.BytesIO(download.content)).resize((512, 384)).save(smaller, format="JPEG", quality=75)
    result = acme.post("/api/v1/verify", files={"file": ("c.jpg", smaller.getvalue(), "image/jpeg")}).json()
    assert result["record_id"] == record_id and result["authentic"] is True
    assert result["checks"]["watermark"]["passed"] is True
    assert result["checks"]["watermark"]["details"].startswith("Payload matched, bit error rate ")
    exact = acme.post("/api/v1/verify", files={"file": ("x.jpg", download.content, "image/jpeg")}).json()
    assert exact["confidence"] == 1.0 and exact["checks"]["sha256"]["details"] == "Exact match (watermarked copy)"


def test_an_image_too_small_to_mark_is_registered_without_a_copy(marking_api):
    _, clients = marking_api
    acme = clients["acme"]
    response = acme.post("/api/v1/content", files={"file": ("s.jpg", image_bytes(702), "image/jpeg")})
    assert response.status_code == 202
    record_id = response.json()["record_id"]
    assert acme.get(f"/api/v1/records/{record_id}").json()["watermark"] is None
    missing = acme.get(f"/api/v1/records/{record_id}/marked")
    assert missing.status_code == 404 and "has no watermarked copy" in missing.json()["error"]
    assert acme.get("/api/v1/records/no-such-record/marked").status_code == 404
