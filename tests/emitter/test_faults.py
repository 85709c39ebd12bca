"""Fault spec parsing, seeded picks, faulty requests, and the scorecard telling a correct receiver from a careless one."""

import asyncio
import calendar
import itertools
import json
import random
import time
from collections import Counter

import pytest
from aiohttp import web

from emitter import faults
from emitter.dialects import royal, tectra
from emitter.endpoint import new_secret
from emitter.event import Event
from emitter.loaditem import LoadItem
from emitter.loadgen import Target, run_load
from emitter.receiver import Receiver

ALL = "dup=0.08,reorder=0.08,delay=0.08:200ms,badsig=0.08,stale=0.08,malformed=0.08"


def test_parse_reads_every_kind_and_the_hold_time() -> None:
    plan = faults.parse("dup=0.05, reorder=0.05,delay=0.02:30s,badsig=0.01,stale=0.01,malformed=0.01")
    assert plan.probabilities == {
        "dup": 0.05, "reorder": 0.05, "delay": 0.02, "badsig": 0.01, "stale": 0.01, "malformed": 0.01,
    }
    assert plan.delay_hold == 30.0
    assert faults.parse(plan.spec()) == plan


@pytest.mark.parametrize(("hold", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1.5s", 1.5)])
def test_parse_reads_hold_units(hold: str, seconds: float) -> None:
    assert faults.parse(f"delay=0.1:{hold}").delay_hold == seconds


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", r"bad fault '': write NAME=PROBABILITY"),
        ("dup", r"bad fault 'dup': write NAME=PROBABILITY"),
        ("dup=", r"bad fault 'dup=': write NAME=PROBABILITY"),
        ("=0.1", r"bad fault '=0.1'"),
        ("dup=0.1,", r"bad fault ''"),
        ("lost=0.1", r"unknown fault 'lost' in 'lost=0.1': use one of dup, reorder"),
        ("dup=often", r"bad probability 'often' in fault 'dup=often'"),
        ("dup=1.5", r"bad probability '1.5' in fault 'dup=1.5'"),
        ("badsig=-0.1", r"bad probability '-0.1' in fault 'badsig=-0.1'"),
        ("delay=0.1", r"fault 'delay=0.1' needs a hold time"),
        ("delay=0.1:30", r"bad hold time '30' in fault 'delay=0.1:30'"),
        ("delay=0.1:30x", r"bad hold time '30x' in fault 'delay=0.1:30x'"),
        ("dup=0.1:30s", r"fault 'dup=0.1:30s' takes no ':' part"),
        ("dup=0.1,dup=0.2", r"fault 'dup' is given twice"),
        ("dup=0.6,badsig=0.6", r"add up to 1.2, more than 1"),
    ],
)
def test_parse_refuses_a_bad_spec_in_one_line_naming_the_item(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        faults.parse(spec)
    assert "\n" not in str(caught.value)


def test_pick_is_seeded_and_follows_the_probabilities() -> None:
    plan = faults.parse("dup=0.2,badsig=0.1")
    rng_a, rng_b = random.Random(3), random.Random(3)
    draws = [plan.pick(rng_a) for _ in range(5000)]
    assert draws == [plan.pick(rng_b) for _ in range(5000)]
    counts = Counter(draws)
    assert set(counts) == {"honest", "dup", "badsig"}
    assert counts["dup"] > counts["badsig"] > 0 and counts["honest"] > counts["dup"]


def test_malformed_body_is_not_json_yet_utf8() -> None:
    body = tectra.render(Event.new("content.signed", {"name": "é" * 41}))
    cut = faults.malformed(body)
    cut.decode("utf-8")
    with pytest.raises(ValueError):
        json.loads(cut)


def test_stale_event_is_ten_minutes_old() -> None:
    event = Event.new("content.signed", {"record_id": "r1"})
    stale = faults.stale_event(event, 1_750_000_000.0)
    assert stale.timestamp == "2025-06-15T14:56:40Z" and stale.id == event.id and stale.data == event.data


def test_scorecard_verdicts() -> None:
    card = faults.Scorecard("royal")
    card.record("honest", 200)
    card.record("badsig", 401)
    card.record("malformed", 500)
    card.record("stale", 200)
    card.record_dup(200, 200)
    card.record_reorder(None, reordered=False)
    rows = {row["kind"]: row for row in card.rows()}
    assert [rows[k]["verdict"] for k in faults.KINDS] == ["pass", "pass", "fail", "-", "pass", "fail", "fail"]
    assert rows["dup"]["2xx"] == 2 and rows["reorder"]["error"] == 1
    assert "unswapped" in rows["reorder"]["note"]
    assert card.failures() == ["reorder", "stale", "malformed"]
    mixed = faults.Scorecard("tectra")
    mixed.record_dup(200, 409)
    mixed.record("stale", 200)
    assert (mixed.verdict("dup"), mixed.verdict("stale")) == ("fail", "info")
    assert "informational" in faults.expected("stale", "tectra")


def _lifecycles():
    """Endless three-step lifecycles, each record its own group."""
    for n in itertools.count():
        record = f"rec_{n}"
        for step in ("content.signed", "batch.anchored", "content.verified"):
            yield LoadItem(Event.new(step, {"record_id": record, "step": step}), group=record)


async def _careless(secret: str, dialect: str) -> tuple[web.AppRunner, str]:
    """A receiver that checks the HMAC only: no timestamp window, 500 on bad JSON, 200 to everything signed."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if dialect == "royal":
            signed = royal.verify_request(secret, request.headers, body, time.time(), tolerance=float("inf"))
        else:
            signed = tectra.verify_request(secret, request.headers, body, time.time())
        if not signed:
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            json.loads(body)
        except ValueError:
            return web.json_response({"error": "crashed"}, status=500)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"


def _scorecard(dialect: str, careless: bool) -> tuple[dict, Receiver | None]:
    """Run 1 s of faulted load at 300/s against the reference or the careless receiver; rows by kind."""
    secret = new_secret()

    async def main():
        receiver = None
        if careless:
            runner, url = await _careless(secret, dialect)
        else:
            receiver = Receiver(secret, dialect=dialect)
            await receiver.start()
            url = receiver.url + "hooks"
        try:
            report = await run_load(
                _lifecycles(), Target(url, secret, dialect), rate=300, duration=1.0, connections=8,
                fault_plan=faults.parse(ALL), seed=11,
            )
        finally:
            await (runner.cleanup() if careless else receiver.stop())
        return report, receiver

    report, receiver = asyncio.run(main())
    assert report.timeouts == report.connection_errors == 0
    rows = {row["kind"]: row for row in report.scorecard}
    assert all(rows[kind]["sent"] > 0 for kind in faults.KINDS)
    assert sum(row["sent"] for row in report.scorecard) == 300
    return rows, receiver


@pytest.mark.parametrize("dialect", ["royal", "tectra"])
def test_reference_receiver_passes_every_fault(dialect: str) -> None:
    rows, receiver = _scorecard(dialect, careless=False)
    stale = "pass" if dialect == "royal" else "info"
    assert {kind: row["verdict"] for kind, row in rows.items()} == {
        "honest": "pass", "dup": "pass", "reorder": "pass", "delay": "pass",
        "badsig": "pass", "stale": stale, "malformed": "pass",
    }
    assert rows["badsig"]["4xx"] == rows["badsig"]["sent"]
    assert rows["malformed"]["4xx"] == rows["malformed"]["sent"]
    if dialect == "tectra":
        assert "tectra signs no timestamp" in rows["stale"]["note"]
    by_id: dict[str, list] = {}
    for got in receiver.received:
        by_id.setdefault(got.delivery_id, []).append(got)
    twice = [seen for seen in by_id.values() if len(seen) == 2]
    assert len(twice) == rows["dup"]["sent"]
    assert all(a.body == b.body and a.headers == b.headers for a, b in twice)


def test_reordered_events_arrive_after_the_next_event_of_their_group() -> None:
    _, receiver = _scorecard("royal", careless=False)
    steps: dict[str, list[str]] = {}
    for got in receiver.received:
        if got.verified:
            try:
                data = json.loads(got.body)["data"]
            except ValueError:
                continue
            steps.setdefault(data["record_id"], []).append(data["step"])
    natural = ["content.signed", "batch.anchored", "content.verified"]
    assert any(order[:2] == natural[1::-1] for order in steps.values())


def test_tectra_stale_moves_body_and_header_timestamp_ten_minutes_back() -> None:
    secret = new_secret()

    async def main() -> Receiver:
        receiver = Receiver(secret)
        await receiver.start()
        try:
            source = (LoadItem(Event.new("content.signed", {"record_id": f"r{i}"})) for i in range(20))
            await run_load(source, Target(receiver.url, secret), rate=200, duration=1.0,
                           fault_plan=faults.parse("stale=1"), seed=1)
        finally:
            await receiver.stop()
        return receiver

    receiver = asyncio.run(main())
    assert len(receiver.received) == 20
    for got in receiver.received:
        stamp = json.loads(got.body)["timestamp"]
        assert got.verified and got.headers["X-Tectra-Timestamp"] == stamp
        age = time.time() - calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        assert 590 <= age <= 630


@pytest.mark.parametrize("dialect", ["royal", "tectra"])
def test_careless_receiver_fails_the_kinds_it_mishandles(dialect: str) -> None:
    rows, _ = _scorecard(dialect, careless=True)
    verdicts = {kind: row["verdict"] for kind, row in rows.items()}
    assert verdicts["malformed"] == "fail" and rows["malformed"]["5xx"] == rows["malformed"]["sent"]
    assert verdicts["stale"] == ("fail" if dialect == "royal" else "info")
    assert all(verdicts[kind] == "pass" for kind in ("honest", "dup", "reorder", "delay", "badsig"))


def _batches(size: int = 4):
    """Endless batches: each record's signing in its own group, then the announcement that follows them all."""
    for n in itertools.count():
        records = [f"rec_{n}_{i}" for i in range(size)]
        for record in records:
            yield LoadItem(Event.new("content.signed", {"record_id": record}), group=record)
        yield LoadItem(Event.new("batch.anchored", {"record_ids": records}), group=f"batch_{n}",
                       follows=tuple(records))


def test_reorder_sends_a_batch_announcement_before_a_signing_it_follows() -> None:
    secret = new_secret()

    async def main() -> tuple[list[dict], dict]:
        receiver = Receiver(secret)
        port = await receiver.start("127.0.0.1", 0)
        try:
            report = await run_load(_batches(), Target(f"http://127.0.0.1:{port}/", secret), rate=200,
                                    duration=1.0, connections=1, fault_plan=faults.parse("reorder=0.15"), seed=3)
        finally:
            await receiver.stop()
        return [json.loads(r.body) for r in receiver.received], {row["kind"]: row for row in report.scorecard}

    arrived, rows = asyncio.run(main())
    unswapped = int(rows["reorder"]["note"].split()[0]) if rows["reorder"]["note"] else 0
    assert rows["reorder"]["sent"] > 2 * unswapped, "most held events were overtaken within the window"
    signed_at = {e["data"]["record_id"]: i for i, e in enumerate(arrived) if e["event"] == "content.signed"}
    early = [(i, rid) for i, e in enumerate(arrived) if e["event"] == "batch.anchored"
             for rid in e["data"]["record_ids"] if signed_at.get(rid, -1) > i]
    assert early, "some announcement arrived before the signing of a record it lists"
    assert len(signed_at) == sum(len(e["data"]["record_ids"]) for e in arrived if e["event"] == "batch.anchored")
