"""Endpoint: ids, secrets (also valid Standard Webhooks keys), filters and URL validation."""

import base64
import re
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from emitter.endpoint import Endpoint, new_secret


def test_new_secret_is_whsec_base64_of_32_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_standard_webhooks_vector_holds_with_the_reference_library(vectors: dict) -> None:
    v = vectors["standard_webhooks"][0]
    signed = Webhook(v["secret"]).sign(v["msg_id"], datetime.fromtimestamp(v["timestamp"], timezone.utc), v["body"])
    assert signed == v["signature"]


def test_new_secret_is_a_standard_webhooks_key() -> None:
    webhook = Webhook(new_secret())
    when = datetime.now(timezone.utc)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": webhook.sign("msg_1", when, '{"a":1}'),
    }
    assert webhook.verify('{"a":1}', headers) == {"a": 1}


def test_new_endpoint() -> None:
    ep = Endpoint.new("http://127.0.0.1:9000/hooks", events=["content.signed"])
    assert re.fullmatch(r"ep_[0-9a-f]{12}", ep.id)
    assert ep.secret.startswith("whsec_")
    assert ep.events == ("content.signed",)
    assert (ep.dialect, ep.persistent) == ("tectra", True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ep.created_at)


def test_given_secret_is_kept() -> None:
    assert Endpoint.new("https://example.com/h", secret="whsec_given").secret == "whsec_given"


def test_wants() -> None:
    everything = Endpoint.new("http://127.0.0.1/h")
    some = Endpoint.new("http://127.0.0.1/h", events=("content.signed", "batch.anchored"))
    nothing = Endpoint.new("http://127.0.0.1/h", events=())
    assert everything.wants("content.verified")
    assert some.wants("batch.anchored") and not some.wants("content.verified")
    assert not nothing.wants("content.signed")


@pytest.mark.parametrize("url", ["ftp://example.com/h", "example.com/hooks", "http://", "file:///hooks"])
def test_bad_url_is_a_one_line_value_error_naming_it(url: str) -> None:
    with pytest.raises(ValueError) as info:
        Endpoint.new(url)
    assert repr(url) in str(info.value) and "\n" not in str(info.value)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown webhook dialect"):
        Endpoint.new("http://127.0.0.1/h", dialect="svix-ish")
