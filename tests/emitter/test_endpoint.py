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


def test_rotate_keeps_the_old_secret_signing_for_the_grace_period() -> None:
    ep = Endpoint.new("http://127.0.0.1/h", dialect="royal")
    rotated = ep.rotate(grace_seconds=3600, now=1000.0)
    assert rotated.secret != ep.secret and rotated.secret.startswith("whsec_")
    assert rotated.previous_secrets == ((ep.secret, 4600.0),)
    assert (rotated.id, rotated.url, rotated.created_at) == (ep.id, ep.url, ep.created_at)
    assert rotated.signing_secrets(4599.0) == (rotated.secret, ep.secret)
    assert rotated.signing_secrets(4600.0) == (rotated.secret,)
    assert ep.signing_secrets(1000.0) == (ep.secret,)


def test_rotate_with_a_given_secret_and_default_grace_of_a_day() -> None:
    ep = Endpoint.new("http://127.0.0.1/h", secret="whsec_old")
    rotated = ep.rotate("whsec_new", now=0.0)
    assert rotated.secret == "whsec_new"
    assert rotated.previous_secrets == (("whsec_old", 86400.0),)


def test_rotating_twice_keeps_every_secret_still_in_grace_newest_first() -> None:
    ep = Endpoint.new("http://127.0.0.1/h", secret="whsec_a")
    twice = ep.rotate("whsec_b", grace_seconds=100, now=0.0).rotate("whsec_c", grace_seconds=100, now=50.0)
    assert twice.previous_secrets == (("whsec_b", 150.0), ("whsec_a", 100.0))
    assert twice.signing_secrets(120.0) == ("whsec_c", "whsec_b")
    pruned = twice.rotate("whsec_d", grace_seconds=10, now=120.0)
    assert pruned.previous_secrets == (("whsec_c", 130.0), ("whsec_b", 150.0))


def test_rotate_with_zero_grace_drops_the_old_secret_at_once() -> None:
    ep = Endpoint.new("http://127.0.0.1/h", secret="whsec_old")
    assert ep.rotate("whsec_new", grace_seconds=0, now=5.0).previous_secrets == ()


def test_rotate_back_to_a_previous_secret_does_not_list_it_twice() -> None:
    ep = Endpoint.new("http://127.0.0.1/h", secret="whsec_a").rotate("whsec_b", now=0.0)
    assert ep.rotate("whsec_a", now=1.0).signing_secrets(2.0) == ("whsec_a", "whsec_b")


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace_seconds"):
        Endpoint.new("http://127.0.0.1/h").rotate(grace_seconds=-1)


def test_previous_secrets_from_json_lists_become_tuples() -> None:
    ep = Endpoint("ep_1", "http://127.0.0.1/h", "whsec_a", previous_secrets=[["whsec_b", 10]])
    assert ep.previous_secrets == (("whsec_b", 10.0),)
    assert hash(ep) == hash(Endpoint("ep_1", "http://127.0.0.1/h", "whsec_a", previous_secrets=(("whsec_b", 10.0),)))
