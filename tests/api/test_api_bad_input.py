"""Bad input gets a 4xx JSON error naming the field, never a 5xx; hostile context objects round-trip unchanged."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
from api_support import CAP, WebhookReceiver, image_bytes, raw_request

from emitter.endpoint import new_secret

BOUNDARY = "provsimbadinputboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
HOOK = "http://127.0.0.1:9/hook"


def _content_hash(label: str) -> str:
    """A distinct BLAKE3-shaped hash per test case (registering by hash needs no download)."""
    return hashlib.sha256(f"bad-input {label}".encode()).hexdigest()


def _refused(response, status: int, field: str | None = "") -> dict:
    """Assert a JSON refusal with this status (and field, unless "" is given); return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"]
    if field != "":
        assert body.get("field") == field, body
    return body


def _alive(api) -> None:
    """The server still answers a plain request."""
    assert api.acme.get("/api/v1/webhooks").status_code == 200


def _head(api, path: str, content_type: str, length_header: str) -> str:
    """A request head with the acme key."""
    return (f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {api.keys['acme']}\n"
            f"Content-Type: {content_type}\n{length_header}\n")


def _chunked(payload: bytes) -> list[bytes]:
    """`payload` as HTTP/1.1 chunks of 64 KiB, without the closing chunk (the body never ends)."""
    pieces = [payload[i:i + 65536] for i in range(0, len(payload), 65536)]
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]


# -- oversized bodies: refused before they are read whole (test_api_limits covers /content and /webhooks) ---------

def test_an_announced_oversize_register_body_is_413_before_it_is_sent(api):
    head = _head(api, "/v0/provenance/register", "application/json", "Content-Length: 50000000")
    status, body = raw_request(api.server.port, head, [b'{"originator_id": "1", "context": {"pad": "'])
    assert status == 413 and "over the limit of 1048576 bytes" in json.loads(body)["error"]


@pytest.mark.parametrize("path", ["/api/v1/webhooks", "/v0/provenance/register"])
def test_a_streamed_json_body_is_cut_off_once_it_passes_1_mib(api, path):
    head = _head(api, path, "application/json", "Transfer-Encoding: chunked")
    status, body = raw_request(api.server.port, head, _chunked(b'{"pad": "' + b"x" * (1024 * 1024 + 1)))
    assert status == 413 and json.loads(body)["error"] == "request body is over the limit of 1048576 bytes"
    _alive(api)


def test_an_announced_oversize_verify_upload_is_413_before_it_is_sent(api):
    head = _head(api, "/api/v1/verify", MULTIPART, "Content-Length: 900000000")
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    status, body = raw_request(api.server.port, head, [part])
    assert status == 413 and json.loads(body)["field"] == "file"


def test_a_streamed_verify_upload_is_cut_off_once_it_passes_the_cap(api):
    head = _head(api, "/api/v1/verify", MULTIPART, "Transfer-Encoding: chunked")
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    status, body = raw_request(api.server.port, head, _chunked(part + b"\xff" * (CAP + 1)))
    assert status == 413 and json.loads(body) == {"error": f"file is over the cap of {CAP} bytes", "field": "file"}


# -- nesting -------------------------------------------------------------------------------------------------------

DEEP = ('{"url": "' + HOOK + '", "pad": ["\u5c00", ' + "[" * 100_000 + "]" * 100_000 + ', "x"]}')


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32"])
@pytest.mark.parametrize("path", ["/api/v1/webhooks", "/api/v1/content", "/v0/provenance/register"])
def test_deep_json_in_utf16_or_utf32_is_400_and_the_server_lives(api, path, codec):
    # A character whose UTF-16 bytes look like a backslash once hid the brackets after it from the depth check,
    # and the parser's recursion then took the whole server down.
    response = api.acme.post(path, content=DEEP.encode(codec), headers={"Content-Type": "application/json"})
    assert "deeper than 64 levels" in _refused(response, 400, None)["error"]
    _alive(api)


def test_context_nested_to_the_limit_is_kept_and_one_more_level_is_400(api):
    inner: dict = {"leaf": True}
    for _ in range(62):  # 63 levels inside the body's own object: 64 in all
        inner = {"n": inner}
    ok = api.acme.post("/v0/provenance/register",
                       json={"originator_id": "1", "content_hash": _content_hash("deep"), "context": inner})
    assert ok.status_code == 202, ok.text
    assert api.acme.get(f"/api/v1/records/{ok.json()['id']}").json()["context"] == inner
    deeper = api.acme.post("/v0/provenance/register",
                           json={"originator_id": "1", "content_hash": _content_hash("deeper"), "context": {"n": inner}})
    _refused(deeper, 400, None)


def test_a_deep_multipart_context_is_422_naming_it(api):
    files = {"file": ("x.jpg", image_bytes(811), "image/jpeg")}
    response = api.acme.post("/api/v1/content", files=files, data={"context": '{"a": ' * 70 + "1" + "}" * 70})
    _refused(response, 422, "context")


# -- content types -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/webhooks", "/v0/provenance/register", "/api/v1/content", "/api/v1/verify"])
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/xml",
                                          "text/json", "application/jsonx", "image/jpeg", "*/*", ";;;", "application/"])
def test_a_wrong_content_type_is_415(api, path, content_type):
    response = api.acme.post(path, content=b'{"url": "http://127.0.0.1:9/"}', headers={"Content-Type": content_type})
    assert "expected" in _refused(response, 415, None)["error"]


@pytest.mark.parametrize("path", ["/api/v1/webhooks", "/v0/provenance/register"])
def test_multipart_to_a_json_route_is_415(api, path):
    response = api.acme.post(path, files={"url": (None, HOOK)})
    _refused(response, 415, None)


# -- unknown fields ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/webhooks", {"url": HOOK, "__proto__": {"admin": True}}, "__proto__"),
    ("/api/v1/webhooks", {"url": HOOK, "tenant": "globex"}, "tenant"),
    ("/api/v1/content", {"url": HOOK, "constructor": {"prototype": 1}}, "constructor"),
    ("/v0/provenance/register", {"originator_id": "1", "content_hash": "0" * 64, "admin": True}, "admin"),
    ("/v0/provenance/register", {"originator_id": "1", "content_hash": "0" * 64, "record_id": "r1"}, "record_id"),
])
def test_an_unknown_field_is_422_naming_it(api, path, body, field):
    assert "unknown field" in _refused(api.acme.post(path, json=body), 422, field)["error"]


# -- hostile context objects: stored and echoed back exactly -------------------------------------------------------

CONTEXTS = {
    "sql": {"q": "'; DROP TABLE records; --", "r": "\" OR 1=1 --", "s": "Robert'); DELETE FROM api_keys;--",
            "'; DROP TABLE api_keys; --": "key too"},
    "prototype": {"__proto__": {"admin": True}, "constructor": {"prototype": {"polluted": 1}}, "toString": None},
    "nul": {"nul": "a\u0000b", "\u0000": "\u0000", "ctl": "\x01\x1b[2J\x7f"},
    "numbers": {"big": 10 ** 4000, "neg": -(10 ** 300), "max": 1.7976931348623157e308, "tiny": 5e-324,
                "negzero": -0.0, "float": 0.1, "int": 1, "one": 1.0, "list": [0, -1, 2 ** 63, 2 ** 64 + 1]},
    "long": {"long": "x" * 200_000, "k" * 10_000: "long key"},
    "unicode": {"family": "\U0001F469\u200d\U0001F469\u200d\U0001F467", "rtl": "\u202eevil.exe",
                "bom": "\ufeff", "separators": "\u2028\u2029", "combining": "e\u0301", "nonchar": "\uffff",
                "astral": "\U0010ffff", "cjk": "\u6f22\u5b57", "\u00e9t\u00e9": "\u0130stanbul", "zwj": "\u200d"},
    "shapes": {"": "", " ": [], "nested": {"a": [[], {}, None, True, False, [[[]]]]}, "order": {"z": 1, "a": 2}},
    "template": {"t": "{{7*7}}", "js": "<script>alert(1)</script>", "path": "../../etc/passwd", "fmt": "%s%n"},
}


def _same(got, sent) -> bool:
    """Equal as JSON values, with the same types (1 is not 1.0), the same float signs and the same key order."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and list(got) == list(sent) and all(_same(got[k], sent[k]) for k in sent)
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(_same, got, sent))
    if isinstance(sent, float):
        return isinstance(got, float) and got == sent and math.copysign(1, got) == math.copysign(1, sent)
    return type(got) is type(sent) and got == sent


@pytest.mark.parametrize("name", list(CONTEXTS))
def test_a_hostile_context_round_trips_exactly_through_register(api, name):
    context = CONTEXTS[name]
    body = json.dumps({"originator_id": "7", "content_hash": _content_hash(name), "context": context})
    response = api.acme.post("/v0/provenance/register", content=body.encode(),
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    record = api.acme.get(f"/api/v1/records/{response.json()['id']}")
    assert record.status_code == 200
    assert _same(record.json()["context"], context)
    _alive(api)


@pytest.mark.parametrize("name", ["sql", "nul", "unicode", "numbers"])
def test_a_hostile_context_round_trips_exactly_through_an_upload(api, name):
    context = CONTEXTS[name]
    seed = 820 + list(CONTEXTS).index(name)
    response = api.acme.post("/api/v1/content", files={"file": (f"{name}.jpg", image_bytes(seed), "image/jpeg")},
                             data={"context": json.dumps(context)})
    assert response.status_code == 202, response.text
    assert _same(api.acme.get(f"/api/v1/records/{response.json()['record_id']}").json()["context"], context)


def test_a_hostile_context_reaches_the_webhook_unchanged(api, loop):
    receiver = WebhookReceiver(loop, new_secret(), dialect="royal")
    created = api.globex.post("/api/v1/webhooks", json={"url": receiver.url, "dialect": "royal",
                                                        "events": ["provenance.registration.hashed"]}).json()
    receiver.receiver.secrets = [created["secret"]]
    try:
        context = {**CONTEXTS["sql"], **CONTEXTS["prototype"], **CONTEXTS["nul"], **CONTEXTS["unicode"]}
        response = api.globex.post("/v0/provenance/register", json={
            "originator_id": "9", "content_hash": _content_hash("webhook"), "context": context})
        assert response.status_code == 202, response.text
        # Stray retries of an earlier test's endpoint may reach a reused port: only this secret's count.
        got, *_ = [r for r in receiver.wait_until(lambda seen: any(r.verified for r in seen)) if r.verified]
        assert _same(json.loads(got.body)["data"]["context"], context)
    finally:
        receiver.stop()
        api.globex.delete(f"/api/v1/webhooks/{created['id']}")


@pytest.mark.parametrize("raw, field", [
    (b'{"s": "\\ud800"}', "context.s"),
    (b'{"\\udfff": 1}', "context.\\udfff"),
    (b'{"a": ["ok", {"b": "x\\udc00y"}]}', "context.a[1].b"),
])
def test_a_lone_surrogate_in_context_is_422_naming_where(api, raw, field):
    # JSON lets a string escape half a surrogate pair; such a string is not text, and no webhook body could carry it.
    body = b'{"originator_id": "1", "content_hash": "' + _content_hash(field).encode() + b'", "context": ' + raw + b"}"
    response = api.acme.post("/v0/provenance/register", content=body, headers={"Content-Type": "application/json"})
    _refused(response, 422, field)
    _alive(api)


def test_a_lone_surrogate_in_a_multipart_context_is_422(api):
    files = {"file": ("s.jpg", image_bytes(839), "image/jpeg")}
    _refused(api.acme.post("/api/v1/content", files=files, data={"context": '{"s": "\\ud800"}'}), 422, "context.s")


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"9" * 5000])
def test_numbers_json_cannot_carry_are_400(api, number):
    body = b'{"originator_id": "1", "content_hash": "' + b"a" * 64 + b'", "context": {"n": ' + number + b"}}"
    response = api.acme.post("/v0/provenance/register", content=body, headers={"Content-Type": "application/json"})
    assert "not usable JSON" in _refused(response, 400, None)["error"]


# -- URLs ----------------------------------------------------------------------------------------------------------

BAD_URLS = ["javascript:alert(1)", "file:///etc/passwd", "data:text/plain,hi", "ftp://127.0.0.1/x", "http://",
            "http:///path", "//127.0.0.1/x", "127.0.0.1:9/hook", "http://exa mple.com/", " http://127.0.0.1:9/",
            "http://127.0.0.1:9/\n", "http://127.0.0.1:9/a\tb", "http://" + "a" * 10_000 + ".example/",
            "http://127.0.0.1:9/" + "p" * 10_000, "http://b\u00fccher.example/hook", "http://\u2603/",
            "http://127.0.0.1\u3002example/", "http://[::1/", "http://127.0.0.1:99999/", "http://127.0.0.1:0/",
            "http://exa%00mple.com/", "http://127.0.0.1:9/\x7f", ""]


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_invalid_webhook_url_is_422_naming_url(api, url):
    _refused(api.acme.post("/api/v1/webhooks", json={"url": url}), 422, "url")


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_invalid_content_url_is_422_naming_it(api, url):
    _refused(api.acme.post("/api/v1/content", json={"url": url}), 422, "url")
    _refused(api.acme.post("/v0/provenance/register", json={"originator_id": "1", "file_url": url}), 422, "file_url")


# -- event names ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect, events", [
    ("tectra", ["content.exploded"]), ("tectra", ["CONTENT.SIGNED"]), ("tectra", ["content.signed "]),
    ("tectra", ["*"]), ("tectra", [""]), ("tectra", ["content.signed", "x" * 10_000]),
    ("tectra", ["content.signed\u0000"]), ("royal", ["content.signed"]), ("royal", ["provenance.registration.*"]),
    ("royal", ["provenance.registration.hashed", "__proto__"]), ("tectra", [None]), ("tectra", [["content.signed"]]),
    ("tectra", ["content.signed"] * 17),
])
def test_an_unknown_event_name_is_422_naming_events(api, dialect, events):
    body = _refused(api.acme.post("/api/v1/webhooks", json={"url": HOOK, "dialect": dialect, "events": events}), 422)
    assert body["field"].startswith("events")


# -- Bearer tokens -------------------------------------------------------------------------------------------------

def _tokens(api) -> list[bytes]:
    """Authorization values that must all be refused: malformed, truncated, altered, or a key's stored hash."""
    key = api.keys["acme"]
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")
    return [b"Bearer", b"Bearer ", b"Bearer psk_", b"Bearer " + b"psk_" + b"x" * 10_000, b"Token " + key.encode(),
            b"Bearer " + key[:-1].encode(), b"Bearer " + altered.encode(), b"Bearer " + key.encode() + b"x",
            b"Bearer " + key.upper().encode(), b"Bearer " + hashlib.sha256(key.encode()).hexdigest().encode(),
            b"Bearer psk_" + "\u00e9".encode("latin-1") * 8, b"Bearer \xff\xfe", b"Basic " + key.encode(),
            b"Bearer " + key.encode() + b" " + key.encode(), b"Bearer%20" + key.encode(), b"Bearer psk_' OR '1'='1"]


def test_bad_bearer_tokens_are_401_json(api):
    for token in _tokens(api):
        for method, path in (("GET", "/api/v1/webhooks"), ("POST", "/v0/provenance/register"),
                             ("GET", "/api/v1/records/x")):
            head = (f"{method} {path} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: {token.decode('latin-1')}\n"
                    "Content-Type: application/json\nContent-Length: 2\n")
            status, body = raw_request(api.server.port, head, [b"{}"])
            assert status == 401, (token, body)
            assert "API key" in json.loads(body)["error"], token
            assert api.keys["acme"].encode() not in body
