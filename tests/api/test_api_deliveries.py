"""The delivery log of a tenant's webhooks: filtered listing, and retry of a failed delivery."""
from __future__ import annotations

import socket

from api_support import WebhookReceiver, image_bytes, poll

from emitter.endpoint import new_secret


def test_a_failed_delivery_is_listed_and_a_retry_delivers_it(api, loop):
    receiver = WebhookReceiver(loop, new_secret(), fail_first=3)  # Tectra makes 3 attempts
    try:
        endpoint = api.acme.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["content.signed"]}).json()
        receiver.receiver.secrets = [endpoint["secret"]]
        api.acme.post("/api/v1/content", files={"file": ("d.jpg", image_bytes(601), "image/jpeg")})
        query = {"status": "failed", "endpoint": endpoint["id"]}
        [failed] = poll(lambda: {"rows": api.acme.get("/api/v1/deliveries", params=query).json()},
                        lambda r: len(r["rows"]) == 1)["rows"]
        assert failed["event_type"] == "content.signed" and failed["endpoint_id"] == endpoint["id"]
        assert [a["status_code"] for a in failed["attempts"]] == [500, 500, 500]
        delivered_query = {"status": "delivered", "endpoint": endpoint["id"]}
        assert api.acme.get("/api/v1/deliveries", params=delivered_query).json() == []

        retried = api.acme.post(f"/api/v1/deliveries/{failed['id']}/retry")
        assert retried.status_code == 202 and retried.json() == {"id": failed["id"], "status": "pending"}
        [delivered] = poll(lambda: {"rows": api.acme.get("/api/v1/deliveries", params=delivered_query).json()},
                           lambda r: len(r["rows"]) == 1)["rows"]
        assert delivered["id"] == failed["id"] and len(delivered["attempts"]) == 4
        # Stray retries of an earlier test's endpoint may reach a reused port: only this delivery's count.
        def mine(got):
            """The requests of this delivery."""
            return [r for r in got if r.delivery_id == failed["id"]]

        got = mine(receiver.wait_until(lambda got: len(mine(got)) >= 4))
        assert all(r.verified for r in got)
    finally:
        receiver.stop()


def test_retry_of_unknown_or_in_flight_deliveries_is_refused(api):
    assert api.acme.post("/api/v1/deliveries/dlv_nope/retry").status_code == 404
    with socket.socket() as silent:  # accepts connections, never answers: the delivery stays in flight
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        endpoint = api.acme.post("/api/v1/webhooks", json={"url": url, "events": ["content.signed"]}).json()
        api.acme.post("/api/v1/content", files={"file": ("p.jpg", image_bytes(602), "image/jpeg")})
        [row] = poll(lambda: {"rows": api.acme.get("/api/v1/deliveries", params={"endpoint": endpoint["id"]}).json()},
                     lambda r: [d["status"] for d in r["rows"]] == ["delivering"])["rows"]
        refused = api.acme.post(f"/api/v1/deliveries/{row['id']}/retry")
        assert refused.status_code == 409
        assert refused.json()["error"] == (f"delivery {row['id']} is delivering:"
                                           " only failed or delivered ones are retried")


def test_the_listing_shows_only_the_tenants_endpoints(api):
    ours = {w["id"] for w in api.acme.get("/api/v1/webhooks").json()}
    api.globex.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/globex"})
    api.globex.post("/api/v1/content", files={"file": ("g.jpg", image_bytes(603), "image/jpeg")})
    rows = poll(lambda: {"rows": api.globex.get("/api/v1/deliveries").json()}, lambda r: len(r["rows"]) >= 1)["rows"]
    assert not {r["endpoint_id"] for r in rows} & ours
    assert {r["endpoint_id"] for r in api.acme.get("/api/v1/deliveries").json()} <= ours
    bad = api.acme.get("/api/v1/deliveries", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"
