"""The load generator on loopback: every event arrives signed, open loop counts queueing, errors are told apart."""

import asyncio
import io
import itertools
import socket
import time

import pytest
from aiohttp import web
from rich.console import Console

from emitter import loadgen
from emitter.endpoint import new_secret
from emitter.event import Event
from emitter.loaditem import LoadItem
from emitter.loadgen import Target, run_load
from emitter.loadreport import LoadReport
from emitter.receiver import Receiver


def _events(limit: int | None = None):
    """Small content.signed / batch.anchored pairs, one group per record; endless unless a limit is given."""
    numbers = itertools.count() if limit is None else range(limit)
    for n in numbers:
        record = f"rec_{n}"
        yield LoadItem(Event.new("content.signed", {"record_id": record, "sha256": "ab" * 32}), group=record)
        yield LoadItem(Event.new("batch.anchored", {"record_ids": [record]}), group=record)


async def _serve(handler) -> tuple[web.AppRunner, str]:
    """An aiohttp app answering every POST with `handler` on 127.0.0.1; the runner and its URL."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
def test_open_loop_delivers_every_event_signed_to_the_reference_receiver(dialect: str) -> None:
    secret = new_secret()
    snapshots: list[LoadReport] = []

    async def main() -> tuple[LoadReport, Receiver]:
        receiver = Receiver(secret, dialect=dialect)
        await receiver.start()
        try:
            target = Target(receiver.url + "hooks", secret, dialect)
            report = await run_load(_events(), target, rate=200, duration=1.0, connections=8, progress=snapshots.append)
        finally:
            await receiver.stop()
        return report, receiver

    report, receiver = asyncio.run(main())
    assert report.mode == "open" and report.target_rate == 200
    assert report.sent == report.completed == len(receiver.received) == 200
    assert report.statuses == {200: 200} and report.ok == 200
    assert report.timeouts == report.connection_errors == report.in_flight == 0
    assert all(got.verified for got in receiver.received)
    assert len({got.delivery_id for got in receiver.received}) == 200
    assert sum(second.completed for second in report.timeline) == 200
    assert report.latency_ms["p50"] <= report.latency_ms["p99"] <= report.latency_ms["max"]
    assert report.distribution and report.final
    assert snapshots and not snapshots[0].final and snapshots[0].distribution == []
    live = io.StringIO()
    Console(file=live, width=120).print(snapshots[-1].live())
    assert "in flight" in live.getvalue()


def test_max_mode_sends_back_to_back_and_counts_add_up() -> None:
    secret = new_secret()

    async def main() -> tuple[LoadReport, Receiver]:
        receiver = Receiver(secret)
        await receiver.start()
        try:
            report = await run_load(_events(), Target(receiver.url, secret), rate=None, duration=0.5, connections=4)
        finally:
            await receiver.stop()
        return report, receiver

    report, receiver = asyncio.run(main())
    assert report.mode == "max" and report.target_rate is None
    assert report.sent == report.completed == len(receiver.received) > 0
    assert all(got.verified for got in receiver.received)
    assert report.achieved_rate == pytest.approx(report.completed / report.duration_s)


def test_a_finite_source_ends_the_run_early() -> None:
    secret = new_secret()

    async def main() -> LoadReport:
        receiver = Receiver(secret)
        await receiver.start()
        try:
            return await run_load(_events(5), Target(receiver.url, secret), rate=1000, duration=20.0, connections=2)
        finally:
            await receiver.stop()

    started = time.perf_counter()
    report = asyncio.run(main())
    assert report.completed == 10 and time.perf_counter() - started < 10


def test_open_loop_latency_includes_queueing_behind_a_slow_receiver() -> None:
    async def main() -> tuple[LoadReport, LoadReport]:
        lock = asyncio.Lock()

        async def slow(request: web.Request) -> web.Response:
            await request.read()
            async with lock:
                await asyncio.sleep(0.02)
            return web.json_response({"ok": True})

        runner, url = await _serve(slow)
        try:
            target = Target(url, new_secret())
            opened = await run_load(_events(), target, rate=100, duration=2.0, connections=10)
            closed = await run_load(_events(), target, rate=None, duration=1.0, connections=1)
        finally:
            await runner.cleanup()
        return opened, closed

    opened, closed = asyncio.run(main())
    assert opened.completed == 200 and opened.statuses == {200: 200}
    assert 18 <= closed.latency_ms["p50"] and closed.achieved_rate <= 51
    assert closed.achieved_rate >= 20
    assert opened.latency_ms["p99"] > 5 * closed.latency_ms["p50"]
    assert opened.achieved_rate <= 51
    answered = [second for second in opened.timeline if second.completed]
    assert answered[-1].p50_ms > answered[0].p50_ms


def test_timeouts_and_connection_errors_are_counted_apart_from_statuses() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    async def main() -> tuple[LoadReport, LoadReport]:
        async def stuck(request: web.Request) -> web.Response:
            await asyncio.sleep(1)
            return web.json_response({})

        runner, url = await _serve(stuck)
        try:
            hung = await run_load(_events(), Target(url, new_secret()), rate=50, duration=0.2, timeout=0.2)
        finally:
            await runner.cleanup()
        refused = await run_load(
            _events(), Target(f"http://127.0.0.1:{closed_port}/", new_secret()), rate=50, duration=0.2
        )
        return hung, refused

    hung, refused = asyncio.run(main())
    assert (hung.sent, hung.timeouts, hung.connection_errors, hung.completed, hung.statuses) == (10, 10, 0, 0, {})
    assert (refused.sent, refused.connection_errors, refused.timeouts, refused.completed) == (10, 10, 0, 0)
    assert sum(second.errors for second in refused.timeline) == 10


def test_run_is_a_plain_call_taking_the_dialect_from_the_target() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = loadgen.run(_events(), Target(f"http://127.0.0.1:{port}/", new_secret(), "royal"), 20, 0.1)
    assert (report.sent, report.connection_errors, report.dialect) == (2, 2, "royal")


def test_cancelling_run_load_stops_the_run() -> None:
    secret = new_secret()

    async def main() -> float:
        receiver = Receiver(secret)
        await receiver.start()
        try:
            task = asyncio.ensure_future(run_load(_events(), Target(receiver.url, secret), 100, duration=60.0))
            await asyncio.sleep(0.3)
            started = time.perf_counter()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.perf_counter() - started
        finally:
            await receiver.stop()

    assert asyncio.run(main()) < 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be above 0"),
        ({"duration": 0}, "duration must be above 0"),
        ({"connections": 0}, "connections must be from 1 to 1000, got 0"),
        ({"connections": 5000}, "connections must be from 1 to 1000, got 5000"),
        ({"timeout": -1}, "timeout must be above 0"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs: dict, message: str) -> None:
    settings = {"rate": 10, "duration": 1.0, "connections": 1, "timeout": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        asyncio.run(run_load(_events(), Target("http://127.0.0.1:9/", "whsec_x"), **settings))


def test_an_unknown_dialect_a_bad_secret_or_url_is_refused() -> None:
    with pytest.raises(ValueError, match="target URL 'ftp://x/' is not an http"):
        asyncio.run(run_load(_events(), Target("ftp://x/", "whsec_x"), 10, 1.0))
    with pytest.raises(ValueError, match="unknown webhook dialect"):
        asyncio.run(run_load(_events(), Target("http://127.0.0.1:9/", "whsec_x", "smoke"), 10, 1.0))
    with pytest.raises(ValueError, match="royal webhook secret"):
        asyncio.run(run_load(_events(), Target("http://127.0.0.1:9/", "whsec_x", "royal"), 10, 1.0))
