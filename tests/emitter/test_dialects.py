"""Dialect lookup and the protocol round trip: what sign_headers signs, verify_request accepts."""

import pytest

from emitter import dialects
from emitter.dialects import royal, tectra
from emitter.endpoint import new_secret

BODY = b'{"type":"provenance.registration.complete","data":{}}'


def test_get_both_dialects() -> None:
    assert dialects.get("tectra") is tectra
    assert dialects.get("royal") is royal
    assert dialects.names() == ("tectra", "royal")


def test_unknown_dialect_is_one_line_value_error() -> None:
    with pytest.raises(ValueError) as info:
        dialects.get("svix")
    message = str(info.value)
    assert "'svix'" in message and "tectra, royal" in message and "\n" not in message


def test_sign_headers_round_trip_through_verify_request() -> None:
    dialect = dialects.get("tectra")
    body = b'{"event":"content.signed"}'
    headers = dialect.sign_headers("whsec_abc", "content.signed", "evt_1", "2025-06-14T09:32:00Z", "dlv_1", body, 0.0)
    assert dialect.verify_request("whsec_abc", headers, body, 1e9)
    assert not dialect.verify_request("whsec_abd", headers, body, 1e9)
    assert dialect.identify(headers, body) == ("dlv_1", "content.signed")


@pytest.mark.parametrize("name", dialects.names())
def test_every_dialect_takes_a_secret_sequence_newest_first(name: str) -> None:
    dialect = dialects.get(name)
    newest, older = new_secret(), new_secret()
    now = 1_750_000_000.0
    rest = ("content.signed", "evt_1", "2025-06-14T09:32:00Z", "dlv_1", BODY, now)
    headers = dialect.sign_headers([newest, older], *rest)
    assert dialect.verify_request(newest, headers, BODY, now)
    assert headers == dialect.sign_headers((newest, older), *rest)


@pytest.mark.parametrize("name", dialects.names())
def test_signing_with_no_secret_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="no webhook secret"):
        dialects.get(name).sign_headers((), "t", "evt_1", "2025-06-14T09:32:00Z", "dlv_1", BODY, 0.0)


@pytest.mark.parametrize("name", dialects.names())
def test_empty_secret_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=f"a {name} webhook secret"):
        dialects.get(name).check_secret("")
