"""Royal dialect: the Standard Webhooks vector, the outside verifiers, tolerance, one failing case per input."""

import json
import time
from datetime import datetime, timezone

import pytest
import svix.webhooks
from standardwebhooks import Webhook, WebhookVerificationError

from emitter.dialects import royal
from emitter.endpoint import Endpoint, new_secret
from emitter.event import Event

SIGNED_NAMES = ("webhook-id", "webhook-timestamp", "webhook-signature")
SVIX_NAMES = ("svix-id", "svix-timestamp", "svix-signature")


@pytest.fixture
def vector(vectors: dict) -> dict:
    """The Standard Webhooks vector."""
    return vectors["standard_webhooks"][0]


def _vector_headers(vector: dict, **changes: str) -> dict[str, str]:
    """The vector's three webhook-* headers, with any of them replaced."""
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["signature"],
    }
    headers.update({name.replace("_", "-"): value for name, value in changes.items()})
    return headers


def _sign(secrets: str | tuple[str, ...], body: bytes, now: float, event_id: str = "evt_1") -> dict[str, str]:
    """Royal headers for one attempt of `body` at `now`."""
    return royal.sign_headers(secrets, "provenance.registration.complete", event_id, "", "dlv_1", body, now)


def test_signature_reproduces_the_vector(vector: dict) -> None:
    signed = royal.signature((vector["secret"],), vector["msg_id"], vector["timestamp"], vector["body"].encode())
    assert signed == vector["signature"]


def test_sign_headers_reproduce_the_vector_under_both_names(vector: dict) -> None:
    body = vector["body"].encode()
    headers = royal.sign_headers(
        vector["secret"], "test", vector["msg_id"], "2021-02-25T15:02:10Z", "dlv_1", body, vector["timestamp"] + 0.9
    )
    expected = (vector["msg_id"], str(vector["timestamp"]), vector["signature"])
    assert tuple(headers[name] for name in SIGNED_NAMES) == expected
    assert tuple(headers[name] for name in SVIX_NAMES) == expected
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "provsim-webhooks/0.1"
    assert len(headers) == 8


def test_verify_request_accepts_the_vector(vector: dict) -> None:
    headers, body = _vector_headers(vector), vector["body"].encode()
    assert royal.verify_request(vector["secret"], headers, body, vector["timestamp"])


def test_verify_request_accepts_svix_names_alone(vector: dict) -> None:
    headers = {svix: value for svix, value in zip(SVIX_NAMES, _vector_headers(vector).values())}
    assert royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_standardwebhooks_library_verifies_our_headers() -> None:
    secret = new_secret()
    body = json.dumps({"type": "t", "data": {"name": "Zürich"}}, ensure_ascii=False).encode()
    headers = _sign(secret, body, time.time())
    assert Webhook(secret).verify(body, headers) == {"type": "t", "data": {"name": "Zürich"}}


def test_svix_library_verifies_our_svix_headers() -> None:
    secret = new_secret()
    body = b'{"type":"t","data":{}}'
    headers = _sign(secret, body, time.time())
    svix.webhooks.Webhook(secret).verify(body, {name: headers[name] for name in SVIX_NAMES})


def test_request_signed_by_the_library_passes_verify_request() -> None:
    secret, now = new_secret(), time.time()
    body = '{"type":"t","data":{}}'
    stamp = datetime.fromtimestamp(int(now), timezone.utc)
    headers = {
        "webhook-id": "msg_lib",
        "webhook-timestamp": str(int(now)),
        "webhook-signature": Webhook(secret).sign("msg_lib", stamp, body),
    }
    assert royal.verify_request(secret, headers, body.encode(), now)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (240, True), (300, True), (301, False), (360, False), (-240, True), (-360, False)],
    ids=["fresh", "4-min-old", "at-tolerance", "just-past-tolerance", "6-min-old", "4-min-ahead", "6-min-ahead"],
)
def test_tolerance_is_five_minutes_against_the_given_now(vector: dict, age: int, accepted: bool) -> None:
    now = vector["timestamp"] + age
    assert royal.verify_request(vector["secret"], _vector_headers(vector), vector["body"].encode(), now) is accepted


def test_tolerance_is_configurable(vector: dict) -> None:
    headers, body, now = _vector_headers(vector), vector["body"].encode(), vector["timestamp"] + 360
    assert royal.verify_request(vector["secret"], headers, body, now, tolerance=600)
    assert not royal.verify_request(vector["secret"], headers, body, vector["timestamp"] + 60, tolerance=30)


def test_changed_body_fails(vector: dict) -> None:
    body = vector["body"].replace("2432232314", "2432232315").encode()
    assert not royal.verify_request(vector["secret"], _vector_headers(vector), body, vector["timestamp"])


def test_body_with_added_whitespace_fails(vector: dict) -> None:
    body = (vector["body"] + "\n").encode()
    assert not royal.verify_request(vector["secret"], _vector_headers(vector), body, vector["timestamp"])


def test_changed_id_fails(vector: dict) -> None:
    headers = _vector_headers(vector, webhook_id=vector["msg_id"] + "x")
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_changed_timestamp_fails(vector: dict) -> None:
    headers = _vector_headers(vector, webhook_timestamp=str(vector["timestamp"] + 1))
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_changed_secret_fails(vector: dict) -> None:
    headers, body = _vector_headers(vector), vector["body"].encode()
    assert not royal.verify_request(new_secret(), headers, body, vector["timestamp"])


def test_changed_signature_fails(vector: dict) -> None:
    signature = vector["signature"]
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    headers = _vector_headers(vector, webhook_signature=flipped)
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_other_signature_version_fails(vector: dict) -> None:
    headers = _vector_headers(vector, webhook_signature=vector["signature"].replace("v1,", "v2,"))
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


@pytest.mark.parametrize("missing", SIGNED_NAMES)
def test_missing_header_fails(vector: dict, missing: str) -> None:
    headers = {k: v for k, v in _vector_headers(vector).items() if k != missing}
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


@pytest.mark.parametrize("stamp", ["1614265330.0", "soon", "99999999999999999999"])
def test_unreadable_or_absurd_timestamp_is_refused_not_raised(vector: dict, stamp: str) -> None:
    headers = _vector_headers(vector, webhook_timestamp=stamp)
    assert not royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_non_utf8_body_is_refused_not_raised(vector: dict) -> None:
    assert not royal.verify_request(vector["secret"], _vector_headers(vector), b"\xff\xfe", vector["timestamp"])


def test_headers_are_read_case_insensitively(vector: dict) -> None:
    headers = {k.upper(): v for k, v in _vector_headers(vector).items()}
    assert royal.verify_request(vector["secret"], headers, vector["body"].encode(), vector["timestamp"])


def test_rotation_signs_once_per_secret_newest_first() -> None:
    new, old = new_secret(), new_secret()
    body, now = b'{"type":"t","data":{}}', time.time()
    headers = _sign((new, old), body, now)
    first, second = headers["webhook-signature"].split(" ")
    assert first == _sign(new, body, now)["webhook-signature"]
    assert second == _sign(old, body, now)["webhook-signature"]
    assert headers["svix-signature"] == headers["webhook-signature"]
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
        svix.webhooks.Webhook(secret).verify(body, {name: headers[name] for name in SVIX_NAMES})
        assert royal.verify_request(secret, headers, body, now)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_timestamp_is_the_attempt_time_in_whole_seconds() -> None:
    headers = _sign(new_secret(), b"{}", 1_750_000_000.99)
    assert headers["webhook-timestamp"] == headers["svix-timestamp"] == "1750000000"


def test_message_id_is_the_event_id() -> None:
    headers = _sign(new_secret(), b"{}", 0.0, event_id="evt_same")
    assert headers["webhook-id"] == headers["svix-id"] == "evt_same"


def test_render_is_royals_envelope() -> None:
    event = Event("evt_1", "provenance.registration.hashed", {"provenance": {"content_hash": "ab"}}, "t")
    body = royal.render(event)
    assert body == b'{"type":"provenance.registration.hashed","data":{"provenance":{"content_hash":"ab"}}}'


def test_render_keeps_non_ascii_as_utf8() -> None:
    event = Event("evt_1", "provenance.registration.complete", {"context": {"city": "Zürich"}}, "t")
    assert "Zürich".encode() in royal.render(event)


def test_identify() -> None:
    body = b'{"type":"provenance.registration.nft_added","data":{}}'
    assert royal.identify({"Webhook-Id": "evt_9"}, body) == ("evt_9", "provenance.registration.nft_added")
    assert royal.identify({"svix-id": "msg_9"}, b"[1]") == ("msg_9", None)
    assert royal.identify({}, b"not json") == (None, None)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_a", "whsec_é", ""])
def test_unusable_secret_is_a_one_line_error_saying_the_format(secret: str) -> None:
    with pytest.raises(ValueError) as info:
        royal.check_secret(secret)
    message = str(info.value)
    assert "'whsec_' followed by non-empty base64" in message and "\n" not in message


def test_usable_secrets_pass(vector: dict) -> None:
    royal.check_secret(vector["secret"])
    royal.check_secret(new_secret())


def test_royal_endpoint_refuses_a_secret_the_libraries_cannot_use() -> None:
    with pytest.raises(ValueError, match="royal webhook secret"):
        Endpoint.new("http://127.0.0.1/h", secret="whsec_a", dialect="royal")
    assert Endpoint.new("http://127.0.0.1/h", dialect="royal").dialect == "royal"


def test_retry_policy_is_svixs() -> None:
    assert royal.RETRY_SCHEDULE == (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert royal.TIMEOUT == 15.0
    assert royal.TOLERANCE == 300.0
