"""Tectra dialect: the shared vector, one failing case per changed input, body and header shapes."""

import hashlib
import hmac

import pytest

from emitter.dialects import tectra
from emitter.event import Event


@pytest.fixture
def vector(vectors: dict) -> dict:
    """The Tectra vector."""
    return vectors["tectra"][0]


def test_sign_matches_vector(vector: dict) -> None:
    assert tectra.sign(vector["secret"], vector["body"].encode()) == vector["x_tectra_signature"]


def test_verify_accepts_vector(vector: dict) -> None:
    assert tectra.verify(vector["secret"], vector["body"].encode(), vector["x_tectra_signature"])


def test_sign_equals_seed_receiver_logic(vector: dict) -> None:
    body = b'{"event":"batch.anchored","data":{"leaf_count":247}}'
    seed = hmac.new(vector["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert tectra.sign(vector["secret"], body) == seed


def test_changed_body_fails(vector: dict) -> None:
    body = vector["body"].replace("content.signed", "content.verified").encode()
    assert not tectra.verify(vector["secret"], body, vector["x_tectra_signature"])


def test_body_with_added_whitespace_fails(vector: dict) -> None:
    assert not tectra.verify(vector["secret"], (vector["body"] + "\n").encode(), vector["x_tectra_signature"])


def test_changed_secret_fails(vector: dict) -> None:
    assert not tectra.verify(vector["secret"] + "x", vector["body"].encode(), vector["x_tectra_signature"])


def test_prefix_stripped_secret_fails(vector: dict) -> None:
    stripped = vector["secret"].removeprefix("whsec_")
    assert stripped != vector["secret"]
    assert not tectra.verify(stripped, vector["body"].encode(), vector["x_tectra_signature"])


def test_changed_signature_fails(vector: dict) -> None:
    signature = vector["x_tectra_signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not tectra.verify(vector["secret"], vector["body"].encode(), flipped)


def test_uppercase_signature_fails(vector: dict) -> None:
    assert not tectra.verify(vector["secret"], vector["body"].encode(), vector["x_tectra_signature"].upper())


def test_non_ascii_signature_is_rejected_not_raised(vector: dict) -> None:
    assert not tectra.verify(vector["secret"], vector["body"].encode(), "é" * 64)


def test_render_reproduces_vector_body(vector: dict) -> None:
    event = Event(
        id="evt_1",
        type="content.signed",
        data={"record_id": "00000000-0000-4000-8000-000000000000"},
        timestamp="2025-06-14T09:32:00Z",
    )
    assert tectra.render(event) == vector["body"].encode()


def test_render_keeps_non_ascii_as_utf8() -> None:
    event = Event(id="evt_1", type="content.signed", data={"name": "Zürich"}, timestamp="2025-06-14T09:32:00Z")
    assert "Zürich".encode() in tectra.render(event)


def test_headers(vector: dict) -> None:
    body = vector["body"].encode()
    headers = tectra.headers(vector["secret"], "content.signed", "dlv_1", "2025-06-14T09:32:00Z", body)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "provsim-webhooks/0.1",
        "X-Tectra-Signature": vector["x_tectra_signature"],
        "X-Tectra-Event": "content.signed",
        "X-Tectra-Delivery": "dlv_1",
        "X-Tectra-Timestamp": "2025-06-14T09:32:00Z",
    }


def test_verify_request_reads_headers_case_insensitively(vector: dict) -> None:
    headers = {"x-tectra-signature": vector["x_tectra_signature"]}
    assert tectra.verify_request(vector["secret"], headers, vector["body"].encode(), 0.0)


def test_verify_request_without_signature_fails(vector: dict) -> None:
    assert not tectra.verify_request(vector["secret"], {}, vector["body"].encode(), 0.0)
    assert not tectra.verify_request(vector["secret"], {"X-Tectra-Signature": ""}, vector["body"].encode(), 0.0)


def test_identify() -> None:
    headers = {"x-tectra-delivery": "dlv_9", "X-TECTRA-EVENT": "batch.anchored"}
    assert tectra.identify(headers, b"{}") == ("dlv_9", "batch.anchored")
    assert tectra.identify({}, b"{}") == (None, None)


def test_retry_policy_is_the_seeds() -> None:
    assert tectra.RETRY_SCHEDULE == (0.0, 60.0, 300.0)
    assert tectra.TIMEOUT == 30.0


def test_sign_headers_during_a_rotation_signs_with_the_newest_secret_only(vector: dict) -> None:
    body = vector["body"].encode()
    secrets = (vector["secret"], "whsec_older")
    headers = tectra.sign_headers(secrets, "content.signed", "evt_1", "2025-06-14T09:32:00Z", "dlv_1", body, 0.0)
    assert headers["X-Tectra-Signature"] == vector["x_tectra_signature"]
