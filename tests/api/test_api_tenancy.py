"""Tenants hear only about their own records: webhooks, batch announcements and verifications stay apart."""
from __future__ import annotations

import json

from api_support import WebhookReceiver, image_bytes

from emitter.endpoint import new_secret


def _events(receiver: WebhookReceiver) -> list[dict]:
    """The payloads a receiver got, all of them verified."""
    assert all(r.verified for r in receiver.receiver.received)
    return [json.loads(r.body) for r in receiver.receiver.received]


def _types(events: list[dict]) -> list[str]:
    """The event names in arrival order."""
    return [e["event"] for e in events]


def test_each_tenant_gets_only_its_own_records_events(api, loop):
    receivers = {name: WebhookReceiver(loop, new_secret()) for name in ("acme", "globex")}
    clients = {"acme": api.acme, "globex": api.globex}
    try:
        for name, receiver in receivers.items():
            created = clients[name].post("/api/v1/webhooks", json={"url": receiver.url}).json()
            receiver.receiver.secrets = [created["secret"]]
        ids = {}
        for name, seed in (("acme", 601), ("globex", 602)):
            response = clients[name].post("/api/v1/content", files={"file": (f"{name}.jpg", image_bytes(seed),
                                                                             "image/jpeg")})
            ids[name] = response.json()["record_id"]
        for receiver in receivers.values():
            receiver.wait_until(lambda got: {"content.signed", "batch.anchored"} <= {r.event_type for r in got})
        clients["globex"].post("/api/v1/verify", files={"file": ("check.jpg", image_bytes(602), "image/jpeg")})
        receivers["globex"].wait_until(lambda got: "content.verified" in {r.event_type for r in got})

        for name, receiver in receivers.items():
            events = _events(receiver)
            [signed] = [e for e in events if e["event"] == "content.signed"]
            assert signed["data"]["record_id"] == ids[name]
            for anchored in (e for e in events if e["event"] == "batch.anchored"):
                assert anchored["data"]["record_ids"] == [ids[name]]
        assert "content.verified" not in _types(_events(receivers["acme"]))
        [verified] = [e for e in _events(receivers["globex"]) if e["event"] == "content.verified"]
        assert verified["data"]["record_id"] == ids["globex"]
    finally:
        for receiver in receivers.values():
            receiver.stop()
