"""Limits and bad input: oversize bodies are 413 before being read whole; nothing malformed gets a 5xx."""
from __future__ import annotations

import json
import random

import pytest
from api_support import CAP, image_bytes, raw_request

BOUNDARY = "provsimtestboundary"


def _head(api, path: str, content_type: str, length_header: str) -> str:
    """A request head with the acme key."""
    return (f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {api.keys['acme']}\n"
            f"Content-Type: {content_type}\n{length_header}\n")


def _file_part_start(name: str = "big.jpg") -> bytes:
    """The opening of a multipart body's file part."""
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()


def _uploads(api) -> set:
    """The files now in the server's upload directory."""
    return set((api.server.settings.data_dir / "uploads").glob("*"))


def test_an_announced_oversize_upload_is_413_before_its_body_is_sent(api):
    before = _uploads(api)
    head = _head(api, "/api/v1/content", f"multipart/form-data; boundary={BOUNDARY}", "Content-Length: 100000000")
    status, body = raw_request(api.server.port, head, [_file_part_start()])  # 100 MB announced, ~100 bytes sent
    assert status == 413
    assert json.loads(body) == {"error": f"request body of 100000000 bytes is over the cap of {CAP} bytes",
                                "field": "file"}
    assert _uploads(api) == before


def test_a_streamed_upload_is_cut_off_once_it_passes_the_cap(api):
    before = _uploads(api)
    head = _head(api, "/api/v1/content", f"multipart/form-data; boundary={BOUNDARY}", "Transfer-Encoding: chunked")
    payload = _file_part_start() + b"\xff" * (CAP + 1)
    pieces = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
    status, body = raw_request(api.server.port, head, chunks)  # the body never ends: only a cut-off answers
    assert status == 413
    assert json.loads(body) == {"error": f"file is over the cap of {CAP} bytes", "field": "file"}
    assert _uploads(api) == before


def test_an_oversize_json_body_is_413_before_it_is_sent(api):
    head = _head(api, "/api/v1/webhooks", "application/json", "Content-Length: 2000000")
    status, body = raw_request(api.server.port, head, [b'{"url": "'])
    assert status == 413 and "over the limit of 1048576 bytes" in json.loads(body)["error"]


def test_a_json_body_just_over_1_mib_is_413(api):
    big = json.dumps({"url": "http://127.0.0.1:9/", "context": {"pad": "x" * (1024 * 1024)}}).encode()
    response = api.acme.post("/api/v1/content", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_an_unauthenticated_upload_is_401_unread(api):
    head = (f"POST /api/v1/content HTTP/1.1\nHost: 127.0.0.1\nContent-Type: multipart/form-data; boundary={BOUNDARY}\n"
            "Content-Length: 100000000\n")
    status, body = raw_request(api.server.port, head, [_file_part_start()])
    assert status == 401 and json.loads(body)["error"].startswith("missing API key")


def _multipart(*parts: tuple[str, str, bytes], close: bool = True) -> bytes:
    """A multipart body from (name, filename or "", bytes) parts."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
BAD_REQUESTS = [
    ("/api/v1/content", "text/plain", b"hello", 415),
    ("/api/v1/content", "", b"hello", 415),
    ("/api/v1/content", "application/json", b"{", 400),
    ("/api/v1/content", "application/json", b"[" * 100000 + b"]" * 100000, 400),
    ("/api/v1/webhooks", "application/json", b'{"url": "http://127.0.0.1:9/", "events": ' + b"[" * 500000, 400),
    ("/api/v1/content", "application/json", b'{"url": ' + b"9" * 5000 + b"}", 400),
    ("/api/v1/content", "application/json", b'"just a string"', 422),
    ("/api/v1/content", "application/json", b'{"url": 5}', 422),
    ("/api/v1/content", "application/json", b'{"url": "http://127.0.0.1:9/", "colour": "red"}', 422),
    ("/api/v1/content", "application/json", b'{"url": "http://127.0.0.1:9/", "context": [1]}', 422),
    ("/api/v1/content", "application/json", b'{"url": "http://[::1"}', 422),
    ("/api/v1/content", "application/json", b'{"url": "http://127.0.0.1:99999/a.jpg"}', 422),
    ("/api/v1/content", "application/json", b'{"url": "http://\xe2\x98\x83.invalid/a.jpg"}', 422),
    ("/api/v1/content", "multipart/form-data", _multipart(("file", "a.jpg", b"x")), 400),
    ("/api/v1/content", MULTIPART, b"this is not multipart at all", 400),
    ("/api/v1/content", MULTIPART, _multipart(("file", "a.jpg", b"abc"), close=False), 400),
    ("/api/v1/content", MULTIPART, _multipart(("file", "a.jpg", b"a"), ("file", "b.jpg", b"b")), 422),
    ("/api/v1/content", MULTIPART, _multipart(("context", "", b"\xff\xfe")), 422),
    ("/api/v1/content", MULTIPART, _multipart(*[("context", "", b"{}")] * 9), 422),
    ("/api/v1/content", MULTIPART, _multipart(("context", "", b"x" * (65 * 1024))), 413),
    ("/api/v1/content", MULTIPART, _multipart(("context", "", b"[" * 60000)), 422),
    ("/api/v1/content", MULTIPART, _multipart(("file", "a.jpg", b"\xff\xd8\xff truncated jpeg")), 422),
    ("/api/v1/verify", "application/json", b"{}", 415),
    ("/api/v1/verify", MULTIPART, _multipart(("file", "", b"")), 422),
    ("/v0/provenance/register", "application/json", b"{}", 422),
    ("/v0/provenance/register", "application/json", b'{"originator_id": "1", "file_url": "gopher://x"}', 422),
    ("/v0/provenance/register", "text/xml", b"<register/>", 415),
    ("/api/v1/webhooks", "application/json", b'{"url": null}', 422),
    ("/api/v1/webhooks", "application/json", b'{"url": "http://127.0.0.1:9/", "events": [1]}', 422),
    ("/api/v1/webhooks/ep_missing/rotate", "application/json", b"", 404),
    ("/api/v1/deliveries/dlv_missing/retry", "application/json", b"", 404),
    ("/api/v1/nowhere", "application/json", b"{}", 404),
    ("/api/v1/records/x", "application/json", b"{}", 405),
]


@pytest.mark.parametrize("path, content_type, body, status", BAD_REQUESTS)
def test_bad_input_is_a_4xx_json_error_never_a_5xx(api, path, content_type, body, status):
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.acme.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def _mutations(seed: int, body: bytes, count: int) -> list[bytes]:
    """`count` copies of `body`, each with a few random bytes flipped, inserted or removed."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[at] = rng.randrange(256)
            elif choice < 0.7:
                data[at:at] = bytes(rng.choice(b'-\r\n"[]{}:;=\\\x00\xff') for _ in range(rng.randint(1, 3)))
            else:
                del data[at:at + rng.randint(1, 8)]
        out.append(bytes(data))
    return out


def test_mangled_multipart_and_json_bodies_never_get_a_5xx(api):
    upload = _multipart(("context", "", b'{"k": [1, {"n": null}]}'), ("origin_type", "", b"camera_image"),
                        ("file", "f.txt", b"some file bytes"))
    webhook = json.dumps({"url": "http://127.0.0.1:9/x", "events": ["content.signed"], "dialect": "tectra"}).encode()
    cases = [("/api/v1/content", MULTIPART, body) for body in _mutations(1, upload, 150)]
    cases += [("/api/v1/webhooks", "application/json", body) for body in _mutations(2, webhook, 150)]
    cases += [("/api/v1/content", f"multipart/form-data; boundary={b}", upload)
              for b in ("", '""', "x" * 200, "a b", "\u00e9", BOUNDARY + ";charset=utf-9")]
    for path, content_type, body in cases:
        response = api.acme.post(path, content=body, headers={"Content-Type": content_type.encode()})
        assert response.status_code < 500, (path, body, response.text)
        assert response.headers["content-type"] == "application/json"


def test_a_truncated_image_is_422_without_the_servers_path(api):
    response = api.acme.post("/api/v1/content", files={"file": ("cut.jpg", image_bytes(701)[:200], "image/jpeg")})
    assert response.status_code == 422
    assert response.json()["field"] == "file" and response.json()["error"].startswith("file: ")
    assert str(api.server.settings.data_dir) not in response.text


def test_the_openapi_document_describes_every_route(api):
    document = api.acme.get("/openapi.json").json()
    assert set(document["paths"]) >= {
        "/api/v1/webhooks", "/api/v1/webhooks/{endpoint_id}", "/api/v1/webhooks/{endpoint_id}/rotate",
        "/api/v1/content", "/api/v1/verify", "/api/v1/records/{record_id}", "/api/v1/deliveries",
        "/api/v1/deliveries/{delivery_id}/retry", "/v0/provenance/register"}
    content_types = document["paths"]["/api/v1/content"]["post"]["requestBody"]["content"]
    assert set(content_types) == {"application/json", "multipart/form-data"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
