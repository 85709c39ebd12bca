"""Delivery engine on loopback: both dialects' signatures, scaled retries, rotation, recovery, limits, producers."""

import asyncio
import hashlib
import hmac
import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import svix.webhooks
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from emitter import outbox
from emitter.clock import Clock
from emitter.dialects import royal
from emitter.endpoint import Endpoint, new_secret
from emitter.engine import DeliveryEngine
from emitter.event import Event
from emitter.receiver import Receiver
from emitter.sender import AiohttpSender

FAST = Clock(time_scale=0.001)


def seed_verify_signature(secret: str, payload: bytes, signature: str) -> bool:
    """The seed's Python receiver check, verbatim apart from the secret argument."""
    expected = hmac.new(
        secret.encode(),
        payload,
        hashlib.sha256,
    ).hexdigest()
    return hmac.compare_digest(expected, signature)


def _enqueue(db_path: Path, endpoints: list[Endpoint], events: list[Event]) -> list[str]:
    """Enqueue events for endpoints in one committed transaction; returns the delivery ids."""
    conn = outbox.connect(db_path)
    try:
        with conn:
            return [dlv for event in events for dlv in outbox.enqueue(conn, event, endpoints)]
    finally:
        conn.close()


def _deliveries(db_path: Path) -> list[dict]:
    """The outbox's delivery log."""
    conn = outbox.connect(db_path)
    try:
        return outbox.list_deliveries(conn)
    finally:
        conn.close()


async def _drain(
    db_path: Path, producer_done: asyncio.Event | None = None, clock: Clock = FAST, **limits: int
) -> dict:
    """Run one engine with a real aiohttp sender until idle; returns its summary."""
    async with AiohttpSender() as sender:
        return await DeliveryEngine(db_path, clock, sender, **limits).run_until_idle(producer_done)


async def _serve(handler) -> tuple[web.AppRunner, str]:
    """Start `handler` for POSTs on 127.0.0.1 at a free port; returns the runner and base URL."""
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def test_all_delivered_signed_as_the_seed_receivers_verify(db_path: Path) -> None:
    signed_events = [Event.new("content.signed", {"record_id": f"r{i}", "name": "Zürich"}) for i in range(4)]
    anchored = Event.new("batch.anchored", {"leaf_count": 4})

    async def main() -> tuple[dict, Receiver, Receiver]:
        everything, signed_only = Receiver("whsec_one"), Receiver("whsec_two")
        await everything.start()
        await signed_only.start()
        try:
            endpoints = [
                Endpoint.new(everything.url, secret="whsec_one"),
                Endpoint.new(signed_only.url, secret="whsec_two", events=["content.signed"]),
            ]
            _enqueue(db_path, endpoints, [*signed_events, anchored])
            return await _drain(db_path), everything, signed_only
        finally:
            await everything.stop()
            await signed_only.stop()

    summary, everything, signed_only = asyncio.run(main())
    assert summary == {"pending": 0, "delivering": 0, "delivered": 9, "failed": 0, "total": 9}
    deliveries = {d["id"]: d for d in _deliveries(db_path)}
    events = {e.id: e for e in [*signed_events, anchored]}
    for receiver, secret, count in ((everything, "whsec_one", 5), (signed_only, "whsec_two", 4)):
        assert len(receiver.received) == count
        for got in receiver.received:
            assert seed_verify_signature(secret, got.body, got.headers["X-Tectra-Signature"])
            delivery = deliveries[got.headers["X-Tectra-Delivery"]]
            event = events[delivery["event_id"]]
            assert got.headers["X-Tectra-Event"] == event.type == got.event_type
            assert got.headers["X-Tectra-Timestamp"] == event.timestamp
            assert got.headers["User-Agent"] == "provsim-webhooks/0.1"
            assert got.body.decode("utf-8").count("Zürich") == (event.type == "content.signed")
        assert len({got.delivery_id for got in receiver.received}) == count
    assert all(len(d["attempts"]) == 1 and d["attempts"][0]["status_code"] == 200 for d in deliveries.values())


def test_retries_keep_delivery_id_and_body_and_follow_the_scaled_schedule(db_path: Path) -> None:
    async def main() -> tuple[list[str], Receiver]:
        receiver = Receiver("whsec_r", fail_first=2)
        await receiver.start()
        try:
            ids = _enqueue(db_path, [Endpoint.new(receiver.url, secret="whsec_r")], [Event.new("content.signed", {})])
            await _drain(db_path)
            return ids, receiver
        finally:
            await receiver.stop()

    (delivery_id,), receiver = asyncio.run(main())
    assert [got.delivery_id for got in receiver.received] == [delivery_id] * 3
    assert len({got.body for got in receiver.received}) == 1
    assert all(seed_verify_signature("whsec_r", g.body, g.headers["X-Tectra-Signature"]) for g in receiver.received)
    (delivery,) = _deliveries(db_path)
    assert delivery["status"] == "delivered"
    attempts = delivery["attempts"]
    assert [(a["n"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    first_gap = attempts[1]["at"] - attempts[0]["at"]
    second_gap = attempts[2]["at"] - attempts[1]["at"]
    assert first_gap >= FAST.scaled(60.0)
    assert second_gap >= FAST.scaled(300.0)
    assert second_gap > first_gap


def test_exhausted_retries_fail_then_a_manual_retry_delivers(db_path: Path) -> None:
    async def main() -> tuple[dict, dict, Receiver]:
        receiver = Receiver("whsec_m", fail_first=3)
        await receiver.start()
        try:
            (delivery_id,) = _enqueue(
                db_path, [Endpoint.new(receiver.url, secret="whsec_m")], [Event.new("content.verified", {})]
            )
            failed = await _drain(db_path)
            conn = outbox.connect(db_path)
            with conn:
                assert outbox.retry_delivery(conn, delivery_id)
            conn.close()
            return failed, await _drain(db_path), receiver
        finally:
            await receiver.stop()

    failed, retried, receiver = asyncio.run(main())
    assert (failed["failed"], failed["delivered"]) == (1, 0)
    assert (retried["failed"], retried["delivered"]) == (0, 1)
    (delivery,) = _deliveries(db_path)
    assert [(a["n"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 500), (3, 500), (4, 200)]
    assert len({got.delivery_id for got in receiver.received}) == 1 and len(receiver.received) == 4


def test_unreachable_endpoint_fails_with_the_error_logged(db_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _enqueue(db_path, [Endpoint.new(f"http://127.0.0.1:{port}/gone")], [Event.new("content.signed", {})])
    assert asyncio.run(_drain(db_path))["failed"] == 1
    (delivery,) = _deliveries(db_path)
    assert [a["error"] for a in delivery["attempts"]] == [f"connection refused by 127.0.0.1:{port}"] * 3


CRASHING_ENGINE = textwrap.dedent(
    """
    import asyncio, sys
    from emitter.clock import Clock
    from emitter.engine import DeliveryEngine
    from emitter.sender import AiohttpSender

    async def main():
        async with AiohttpSender() as sender:
            await DeliveryEngine(sys.argv[1], Clock(0.001), sender).run_until_idle()

    asyncio.run(main())
    """
)


def test_rows_left_delivering_by_a_killed_engine_are_resent_with_the_same_id(db_path: Path) -> None:
    seen: list[str] = []
    hang = True
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["X-Tectra-Delivery"])
        if hang:
            await release.wait()
        return web.json_response({"received": True})

    async def main() -> list[str]:
        nonlocal hang
        runner, base = await _serve(handler)
        try:
            events = [Event.new("content.signed", {"i": i}) for i in range(3)]
            ids = _enqueue(db_path, [Endpoint.new(base + "/hooks")], events)
            child = subprocess.Popen([sys.executable, "-c", CRASHING_ENGINE, str(db_path)])
            try:
                async with asyncio.timeout(20):
                    while len(seen) < 3:
                        await asyncio.sleep(0.01)
            finally:
                child.kill()
                child.wait()
            conn = outbox.connect(db_path)
            assert outbox.summary(conn)["delivering"] == 3
            conn.close()
            hang = False
            await _drain(db_path)
            return ids
        finally:
            release.set()
            await runner.cleanup()

    ids = asyncio.run(main())
    assert sorted(seen) == sorted(ids * 2)
    deliveries = _deliveries(db_path)
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert all([a["n"] for a in d["attempts"]] == [1] for d in deliveries)


def test_global_and_per_endpoint_limits_hold(db_path: Path) -> None:
    current: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def handler(request: web.Request) -> web.Response:
        lane = request.path
        current[lane] += 1
        current["all"] += 1
        peak[lane] = max(peak[lane], current[lane])
        peak["all"] = max(peak["all"], current["all"])
        await asyncio.sleep(0.01)
        current[lane] -= 1
        current["all"] -= 1
        return web.Response()

    async def main() -> dict:
        runner, base = await _serve(handler)
        try:
            endpoints = [Endpoint.new(base + "/a"), Endpoint.new(base + "/b")]
            _enqueue(db_path, endpoints, [Event.new("content.signed", {"i": i}) for i in range(30)])
            return await _drain(db_path, concurrency=5, per_endpoint=3)
        finally:
            await runner.cleanup()

    assert asyncio.run(main())["delivered"] == 60
    assert (peak["/a"], peak["/b"], peak["all"]) == (3, 3, 5)


def test_producer_in_another_thread_with_notify(db_path: Path) -> None:
    async def main() -> tuple[dict, Receiver]:
        receiver = Receiver("whsec_p")
        await receiver.start()
        endpoint = Endpoint.new(receiver.url, secret="whsec_p")
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            async with AiohttpSender() as sender:
                engine = DeliveryEngine(db_path, FAST, sender)

                def produce() -> None:
                    conn = outbox.connect(db_path)
                    for batch in range(10):
                        with conn:
                            for i in range(5):
                                outbox.enqueue(conn, Event.new("content.signed", {"b": batch, "i": i}), [endpoint])
                        engine.notify()
                        threading.Event().wait(0.005)
                    conn.close()
                    loop.call_soon_threadsafe(done.set)

                run = asyncio.ensure_future(engine.run_until_idle(done))
                await asyncio.to_thread(produce)
                return await run, receiver
        finally:
            await receiver.stop()

    summary, receiver = asyncio.run(main())
    assert summary["delivered"] == summary["total"] == 50
    assert len({got.delivery_id for got in receiver.received}) == 50


def test_producer_on_the_same_loop_with_notify(db_path: Path) -> None:
    async def main() -> tuple[dict, Receiver]:
        receiver = Receiver("whsec_q")
        await receiver.start()
        endpoint = Endpoint.new(receiver.url, secret="whsec_q")
        done = asyncio.Event()
        conn = outbox.connect(db_path)
        try:
            async with AiohttpSender() as sender:
                engine = DeliveryEngine(db_path, FAST, sender)
                run = asyncio.ensure_future(engine.run_until_idle(done))
                for batch in range(10):
                    with conn:
                        for i in range(5):
                            outbox.enqueue(conn, Event.new("content.signed", {"b": batch, "i": i}), [endpoint])
                    engine.notify()
                    await asyncio.sleep(0.005)
                done.set()
                return await run, receiver
        finally:
            conn.close()
            await receiver.stop()

    summary, receiver = asyncio.run(main())
    assert summary["delivered"] == summary["total"] == 50
    assert len({got.delivery_id for got in receiver.received}) == 50


def test_cancelled_run_puts_its_claims_back_to_pending(db_path: Path) -> None:
    arrived = 0
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        await release.wait()
        return web.Response()

    async def main() -> None:
        runner, base = await _serve(handler)
        try:
            events = [Event.new("content.signed", {"i": i}) for i in range(40)]
            _enqueue(db_path, [Endpoint.new(base + "/slow")], events)
            run = asyncio.ensure_future(_drain(db_path, per_endpoint=4))
            async with asyncio.timeout(10):
                while arrived < 4:
                    await asyncio.sleep(0.01)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            assert run.cancelled()
        finally:
            release.set()
            await runner.cleanup()

    asyncio.run(main())
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status, attempts, COUNT(*) FROM wh_deliveries GROUP BY 1, 2").fetchall() == [
        ("pending", 0, 40)
    ]
    conn.close()


def _passes(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether the standardwebhooks library, unchanged, accepts the request with this secret."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def _svix_passes(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """Whether the svix library's verifier, unchanged, accepts the request's svix-* headers alone."""
    try:
        svix.webhooks.Webhook(secret).verify(body, {k: v for k, v in headers.items() if k.startswith("svix-")})
    except WebhookVerificationError:
        return False
    return True


def test_royal_deliveries_verify_with_standardwebhooks_and_svix(db_path: Path) -> None:
    secret = new_secret()
    events = [
        Event.new("provenance.registration.hashed", {"context": {"city": "Zürich"}, "provenance": {"id": "1"}}),
        Event.new("provenance.registration.complete", {"provenance": {"id": "1"}}),
    ]
    seen: list[tuple[dict, bytes, bool, bool]] = []

    async def handler(request: web.Request) -> web.Response:
        body, headers = await request.read(), dict(request.headers)
        checks = (_passes(secret, body, headers), _svix_passes(secret, body, headers))
        seen.append((headers, body, *checks))
        return web.Response(status=200 if all(checks) else 401)

    async def main() -> dict:
        runner, base = await _serve(handler)
        try:
            _enqueue(db_path, [Endpoint.new(base + "/royal", secret=secret, dialect="royal")], events)
            return await _drain(db_path)
        finally:
            await runner.cleanup()

    assert asyncio.run(main())["delivered"] == 2
    by_id = {event.id: event for event in events}
    assert [(std, svx) for _, _, std, svx in seen] == [(True, True)] * 2
    attempts = {d["event_id"]: d["attempts"][0]["at"] for d in _deliveries(db_path)}
    for headers, body, _, _ in seen:
        event = by_id[headers["webhook-id"]]
        assert headers["svix-id"] == event.id
        assert body == royal.render(event)
        assert json.loads(body) == {"type": event.type, "data": event.data}
        assert abs(int(headers["webhook-timestamp"]) - attempts[event.id]) <= 1
        assert headers["User-Agent"] == "provsim-webhooks/0.1"


def test_royal_retries_keep_the_id_and_body_and_are_signed_afresh(db_path: Path) -> None:
    secret = new_secret()
    seen: list[tuple[dict, bytes, bool]] = []

    async def handler(request: web.Request) -> web.Response:
        body, headers = await request.read(), dict(request.headers)
        seen.append((headers, body, _passes(secret, body, headers)))
        return web.Response(status=500 if len(seen) == 1 else 200)

    async def main() -> None:
        runner, base = await _serve(handler)
        try:
            endpoint = Endpoint.new(base + "/royal", secret=secret, dialect="royal")
            _enqueue(db_path, [endpoint], [Event.new("provenance.registration.complete", {})])
            await _drain(db_path, clock=Clock(0.25))  # Svix's 5 s wait lasts 1.25 s: a later whole second
        finally:
            await runner.cleanup()

    asyncio.run(main())
    (first, body_1, ok_1), (second, body_2, ok_2) = seen
    assert ok_1 and ok_2
    assert first["webhook-id"] == second["webhook-id"] and body_1 == body_2
    assert int(second["webhook-timestamp"]) >= int(first["webhook-timestamp"]) + 1
    assert first["webhook-signature"] != second["webhook-signature"]
    (delivery,) = _deliveries(db_path)
    assert [(a["n"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]


def test_royal_retries_follow_svixs_scaled_schedule(db_path: Path) -> None:
    clock = Clock(1e-4)
    secret = new_secret()

    async def main() -> Receiver:
        receiver = Receiver(secret, dialect="royal", fail_first=3)
        await receiver.start()
        try:
            _enqueue(db_path, [Endpoint.new(receiver.url, secret=secret, dialect="royal")], [Event.new("t", {})])
            await _drain(db_path, clock=clock)
            return receiver
        finally:
            await receiver.stop()

    receiver = asyncio.run(main())
    assert all(got.verified for got in receiver.received) and len(receiver.received) == 4
    (delivery,) = _deliveries(db_path)
    attempts = delivery["attempts"]
    assert [(a["n"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 500), (4, 200)]
    for n, wait in enumerate((5.0, 300.0, 1800.0)):
        assert attempts[n + 1]["at"] - attempts[n]["at"] >= clock.scaled(wait)


def test_royal_gives_up_after_svixs_eight_attempts(db_path: Path) -> None:
    clock = Clock(1e-5)

    async def main() -> dict:
        receiver = Receiver(new_secret(), dialect="royal", fail_first=100)
        await receiver.start()
        try:
            _enqueue(db_path, [Endpoint.new(receiver.url, dialect="royal")], [Event.new("t", {})])
            return await _drain(db_path, clock=clock)
        finally:
            await receiver.stop()

    assert asyncio.run(main())["failed"] == 1
    (delivery,) = _deliveries(db_path)
    ats = [a["at"] for a in delivery["attempts"]]
    assert len(ats) == len(royal.RETRY_SCHEDULE) == 8
    for n, wait in enumerate(royal.RETRY_SCHEDULE[1:]):
        assert ats[n + 1] - ats[n] >= clock.scaled(wait)


def test_a_rotation_between_attempts_signs_the_retry_with_both_secrets(db_path: Path) -> None:
    old, new = new_secret(), new_secret()
    seen: list[tuple[int, bool, bool]] = []

    async def handler(request: web.Request) -> web.Response:
        body, headers = await request.read(), dict(request.headers)
        signatures = len(headers["webhook-signature"].split(" "))
        seen.append((signatures, _passes(old, body, headers), _passes(new, body, headers)))
        if len(seen) > 1:
            return web.Response()
        conn = outbox.connect(db_path)  # the first attempt rotates the secret, then fails
        with conn:
            outbox.rotate_secret(conn, "ep_rot", new, grace_seconds=3600)
        conn.close()
        return web.Response(status=500)

    async def main() -> None:
        runner, base = await _serve(handler)
        try:
            endpoint = Endpoint("ep_rot", base + "/royal", old, dialect="royal")
            conn = outbox.connect(db_path)
            with conn:
                outbox.save_endpoint(conn, endpoint)
                outbox.enqueue(conn, Event.new("t", {}), [endpoint])
            conn.close()
            await _drain(db_path, clock=Clock(1e-4))
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert seen == [(1, True, False), (2, True, True)]


def test_after_the_grace_period_only_the_new_secret_signs(db_path: Path) -> None:
    old = new_secret()
    seen: list[tuple[dict, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response()

    async def main() -> Endpoint:
        runner, base = await _serve(handler)
        try:
            conn = outbox.connect(db_path)
            with conn:
                outbox.save_endpoint(conn, Endpoint("ep_grace", base + "/royal", old, dialect="royal"))
                outbox.enqueue(conn, Event.new("t", {}), outbox.list_endpoints(conn))
                # rotated two hours ago with an hour's grace: the old secret has expired by now
                rotated = outbox.rotate_secret(conn, "ep_grace", grace_seconds=3600, now=time.time() - 7200)
            conn.close()
            await _drain(db_path)
            return rotated
        finally:
            await runner.cleanup()

    rotated = asyncio.run(main())
    ((headers, body),) = seen
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert _passes(rotated.secret, body, headers) and _svix_passes(rotated.secret, body, headers)
    assert not _passes(old, body, headers)
