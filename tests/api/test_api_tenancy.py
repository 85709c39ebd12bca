"""Tenants hear only about their own records: webhooks, batch announcements and verifications stay apart."""
from __future__ import annotations

import json
from contextlib import closing

from api_support import WebhookReceiver, image_bytes

from emitter import outbox
from emitter.endpoint import Endpoint, new_secret


def _events(receiver: WebhookReceiver) -> list[dict]:
    """The payloads a receiver got, all of them verified."""
    assert all(r.verified for r in receiver.receiver.received)
    return [json.loads(r.body) for r in receiver.receiver.received]


def _types(events: list[dict]) -> list[str]:
    """The event names in arrival order."""
    return [e["event"] for e in events]


def test_each_tenant_gets_only_its_own_records_events_and_the_operator_all(api, loop):
    receivers = {name: WebhookReceiver(loop, new_secret()) for name in ("acme", "globex", "operator")}
    clients = {"acme": api.acme, "globex": api.globex}
    try:
        for name in clients:
            created = clients[name].post("/api/v1/webhooks", json={"url": receivers[name].url}).json()
            receivers[name].receiver.secrets = [created["secret"]]
        operator = Endpoint.new(receivers["operator"].url, secret=receivers["operator"].receiver.secret)
        with closing(outbox.connect(api.server.settings.db)) as conn, conn:
            outbox.save_endpoint(conn, operator)  # as `provsim endpoint add` does: no tenant
        ids = {}
        for name, seed in (("acme", 601), ("globex", 602)):
            response = clients[name].post("/api/v1/content", files={"file": (f"{name}.jpg", image_bytes(seed),
                                                                             "image/jpeg")})
            ids[name] = response.json()["record_id"]
        for name in clients:
            receivers[name].wait_until(lambda got: {"content.signed", "batch.anchored"} <= {r.event_type for r in got})
        everyone = set(ids.values())

        def operator_has_all(got) -> bool:
            """The operator heard both signings and batch announcements covering both records."""
            events = [json.loads(r.body) for r in got]
            anchored = {i for e in events if e["event"] == "batch.anchored" for i in e["data"]["record_ids"]}
            signed = {e["data"]["record_id"] for e in events if e["event"] == "content.signed"}
            return signed == everyone and everyone <= anchored

        receivers["operator"].wait_until(operator_has_all)
        clients["globex"].post("/api/v1/verify", files={"file": ("check.jpg", image_bytes(602), "image/jpeg")})
        receivers["globex"].wait_until(lambda got: "content.verified" in {r.event_type for r in got})

        for name in clients:
            events = _events(receivers[name])
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
