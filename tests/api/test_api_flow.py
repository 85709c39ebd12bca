"""The whole API flow over real HTTP: webhook, upload with context, the four Royal events in order, verify."""
from __future__ import annotations

import json

import jsonschema
from api_support import WebhookReceiver, image_bytes
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from emitter.endpoint import new_secret
from pipeline import royal_events
from pipeline.event_schemas import json_schema


def verified_by_both_libraries(secrets: list[str], headers: dict, body: bytes) -> bool:
    """Whether svix (svix-* headers) and standardwebhooks (webhook-* headers) both accept the request."""
    lowered = {k.lower(): v for k, v in headers.items()}
    svix_headers = {k: v for k, v in lowered.items() if k.startswith("svix-")}
    standard_headers = {k: v for k, v in lowered.items() if k.startswith("webhook-")}
    for secret in secrets:
        try:
            SvixWebhook(secret).verify(body, svix_headers)
            StandardWebhook(secret).verify(body, standard_headers)
            return True
        except Exception:
            continue
    return False


def test_register_upload_receive_the_four_events_in_order_then_verify(api, loop):
    receiver = WebhookReceiver(loop, new_secret(), dialect="royal")
    try:
        created = api.acme.post("/api/v1/webhooks", json={"url": receiver.url, "dialect": "royal"})
        assert created.status_code == 201
        endpoint = created.json()
        receiver.receiver.secrets = [endpoint["secret"]]
        context = {"user_id": "12345", "transaction_ref": "tx_abc123", "tags": ["a", {"b": None}]}
        content = image_bytes(700)
        accepted = api.acme.post("/api/v1/content", files={"file": ("flow.jpg", content, "image/jpeg"),
                                                           "context": (None, json.dumps(context))})
        assert accepted.status_code == 202
        record_id = accepted.json()["record_id"]
        blake3 = api.acme.get(f"/api/v1/records/{record_id}").json()["blake3"]

        def mine(got) -> list[dict]:
            """This registration's events in arrival order."""
            events = [json.loads(r.body) for r in got]
            return [e for e in events if e["data"]["provenance"]["content_hash"] == blake3]

        # Rotate once the first event is in: later deliveries carry both signatures, either secret verifies.
        receiver.wait_until(lambda got: len(mine(got)) >= 1)
        rotated = api.acme.post(f"/api/v1/webhooks/{endpoint['id']}/rotate").json()
        receiver.receiver.secrets = [rotated["secret"], endpoint["secret"]]
        receiver.wait_until(lambda got: len(mine(got)) >= 4)

        events = mine(receiver.receiver.received)
        assert [e["type"] for e in events] == list(royal_events.ROYAL_EVENTS)
        assert all(e["data"]["context"] == context for e in events)
        for event in events:
            jsonschema.validate(event, json_schema(event["type"]))
        for request in receiver.receiver.received:
            assert verified_by_both_libraries([endpoint["secret"]], request.headers, request.body), \
                "the old secret verifies every delivery through the grace period"
        late = [r for r in receiver.receiver.received if len(r.headers["webhook-signature"].split(" ")) == 2]
        assert late and all(verified_by_both_libraries([rotated["secret"]], r.headers, r.body) for r in late)
        assert events[-1]["data"]["provenance"]["id"] == record_id

        verdict = api.acme.post("/api/v1/verify", files={"file": ("again.jpg", content, "image/jpeg")}).json()
        assert verdict["record_id"] == record_id and verdict["authentic"] is True
        assert verdict["checks"]["sha256"]["passed"] and verdict["checks"]["blockchain"]["passed"]
    finally:
        receiver.stop()
