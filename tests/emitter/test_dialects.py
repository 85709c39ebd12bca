"""Dialect lookup and the protocol round trip: what sign_headers signs, verify_request accepts."""

import pytest

from emitter import dialects
from emitter.dialects import tectra


def test_get_tectra() -> None:
    assert dialects.get("tectra") is tectra
    assert dialects.names() == ("tectra",)


def test_unknown_dialect_is_one_line_value_error() -> None:
    with pytest.raises(ValueError) as info:
        dialects.get("royal")
    message = str(info.value)
    assert "'royal'" in message and "tectra" in message and "\n" not in message


def test_sign_headers_round_trip_through_verify_request() -> None:
    dialect = dialects.get("tectra")
    body = b'{"event":"content.signed"}'
    headers = dialect.sign_headers("whsec_abc", "content.signed", "evt_1", "2025-06-14T09:32:00Z", "dlv_1", body, 0.0)
    assert dialect.verify_request("whsec_abc", headers, body, 1e9)
    assert not dialect.verify_request("whsec_abd", headers, body, 1e9)
    assert dialect.identify(headers, body) == ("dlv_1", "content.signed")
