"""Reference receiver on loopback: 200 on a good signature, else 401, both dialects; fail_first, logs, CLI loop."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import time
from dataclasses import dataclass

import aiohttp
import httpx
import pytest

from emitter.clock import Clock
from emitter.dialects import royal, tectra
from emitter.endpoint import new_secret
from emitter.receiver import Receiver, serve_forever

SECRET = "whsec_k7x9m2testsecret"
BODY = b'{"event":"content.signed","timestamp":"2025-06-14T09:32:00Z","data":{"record_id":"r1"}}'


def _signed(delivery_id: str = "dlv_1", secret: str = SECRET) -> dict[str, str]:
    """Tectra headers for BODY signed with `secret`."""
    return tectra.headers(secret, "content.signed", delivery_id, "2025-06-14T09:32:00Z", BODY)


async def _post(receiver: Receiver, headers: dict[str, str], body: bytes = BODY) -> tuple[int, dict]:
    """POST to the receiver and return its status and JSON answer."""
    async with aiohttp.ClientSession() as session:
        async with session.post(receiver.url + "webhooks/tectra", data=body, headers=headers) as response:
            return response.status, await response.json()


def test_valid_signature_is_accepted_logged_and_dumped(tmp_path: Path) -> None:
    lines: list[str] = []
    dump = tmp_path / "hooks.jsonl"

    async def main() -> tuple[int, dict, Receiver]:
        receiver = Receiver(SECRET, on_event=lines.append, dump_path=dump)
        await receiver.start()
        try:
            status, answer = await _post(receiver, _signed())
            await receiver.wait_for(1, timeout=5)
            return status, answer, receiver
        finally:
            await receiver.stop()

    status, answer, receiver = asyncio.run(main())
    assert (status, answer) == (200, {"received": True})
    (got,) = receiver.received
    assert (got.delivery_id, got.event_type, got.verified, got.body) == ("dlv_1", "content.signed", True, BODY)
    assert got.headers["X-Tectra-Signature"] == tectra.sign(SECRET, BODY)
    assert len(lines) == 1 and "content.signed" in lines[0] and "dlv_1" in lines[0] and "200" in lines[0]
    (record,) = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert record["payload"]["data"] == {"record_id": "r1"}
    assert (record["delivery_id"], record["verified"], record["status"]) == ("dlv_1", True, 200)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_signed(secret="whsec_other"), id="other-secret"),
        pytest.param(_signed(secret=SECRET.removeprefix("whsec_")), id="prefix-stripped-secret"),
        pytest.param({k: v for k, v in _signed().items() if k != "X-Tectra-Signature"}, id="no-signature"),
    ],
)
def test_bad_signature_gets_401(headers: dict[str, str]) -> None:
    async def main() -> tuple[int, dict, Receiver]:
        receiver = Receiver(SECRET)
        await receiver.start()
        try:
            return *(await _post(receiver, headers)), receiver
        finally:
            await receiver.stop()

    status, answer, receiver = asyncio.run(main())
    assert (status, answer) == (401, {"error": "Invalid signature"})
    assert [r.verified for r in receiver.received] == [False]


def test_tampered_body_gets_401() -> None:
    async def main() -> int:
        receiver = Receiver(SECRET)
        await receiver.start()
        try:
            status, _ = await _post(receiver, _signed(), BODY.replace(b"r1", b"r2"))
            return status
        finally:
            await receiver.stop()

    assert asyncio.run(main()) == 401


def test_fail_first_answers_500_then_200() -> None:
    async def main() -> list[int]:
        receiver = Receiver(SECRET, fail_first=2)
        await receiver.start()
        try:
            return [(await _post(receiver, _signed()))[0] for _ in range(3)]
        finally:
            await receiver.stop()

    assert asyncio.run(main()) == [500, 500, 200]


def test_taken_port_is_a_one_line_error() -> None:
    async def main() -> None:
        first = Receiver(SECRET)
        port = await first.start()
        try:
            await Receiver(SECRET).start(port=port)
        finally:
            await first.stop()

    with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*: choose another port"):
        asyncio.run(main())


def test_wait_for_times_out_saying_how_many_arrived() -> None:
    async def main() -> None:
        receiver = Receiver(SECRET)
        await receiver.start()
        try:
            await _post(receiver, _signed())
            await receiver.wait_for(2, timeout=0.05)
        finally:
            await receiver.stop()

    with pytest.raises(TimeoutError, match="received 1 of 2 webhooks"):
        asyncio.run(main())


def test_run_listener_prints_each_webhook_and_stops_on_ctrl_c() -> None:
    code = "from emitter.receiver import run_listener; run_listener(0, " + repr(SECRET) + ")"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = proc.stdout.readline()
        assert banner.startswith("Listening for tectra webhooks on http://127.0.0.1:")
        url = banner.split(" on ")[1].split(" ")[0]
        response = httpx.post(url + "hooks", content=BODY, headers=_signed("dlv_cli"), trust_env=False)
        assert response.status_code == 200
        line = proc.stdout.readline()
        assert "dlv_cli" in line and "signature ok" in line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read().strip() == "Stopped listening."
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


ROYAL_BODY = b'{"type":"provenance.registration.complete","data":{"context":{"ref":"tx_1"}}}'


@dataclass(frozen=True)
class FixedClock(Clock):
    """A clock stopped at one instant, for the receiver's tolerance window."""

    at: float = 0.0

    def now(self) -> float:
        """The fixed instant."""
        return self.at


def _royal(secrets: str | list[str], now: float, event_id: str = "evt_1") -> dict[str, str]:
    """Royal headers for ROYAL_BODY signed at `now`."""
    return royal.sign_headers(secrets, "provenance.registration.complete", event_id, "", "dlv_x", ROYAL_BODY, now)


async def _post_all(receiver: Receiver, requests: list[tuple[dict[str, str], bytes]]) -> list[int]:
    """POST each (headers, body) in turn and return the statuses."""
    async with aiohttp.ClientSession() as session:
        statuses = []
        for headers, body in requests:
            async with session.post(receiver.url + "hooks", data=body, headers=headers) as response:
                statuses.append(response.status)
        return statuses


def _exchange(receiver: Receiver, requests: list[tuple[dict[str, str], bytes]]) -> list[int]:
    """Start the receiver, send the requests, stop it; returns the statuses."""

    async def main() -> list[int]:
        await receiver.start()
        try:
            return await _post_all(receiver, requests)
        finally:
            await receiver.stop()

    return asyncio.run(main())


def test_royal_receiver_accepts_a_signed_request_and_records_the_webhook_id() -> None:
    secret = new_secret()
    receiver = Receiver(secret, dialect="royal")
    assert _exchange(receiver, [(_royal(secret, time.time(), "evt_seen"), ROYAL_BODY)]) == [200]
    (got,) = receiver.received
    assert (got.webhook_id, got.delivery_id) == ("evt_seen", "evt_seen")
    assert got.event_type == "provenance.registration.complete"
    assert got.verified and got.body == ROYAL_BODY


def test_royal_receiver_enforces_five_minutes_against_its_clock() -> None:
    secret = new_secret()
    now = time.time()
    requests = [
        (_royal(secret, now - 360), ROYAL_BODY),
        (_royal(secret, now - 240), ROYAL_BODY),
        (_royal(secret, now + 360), ROYAL_BODY),
    ]
    assert _exchange(Receiver(secret, dialect="royal"), requests) == [401, 200, 401]


def test_royal_receiver_checks_the_window_against_an_injected_clock(vectors: dict) -> None:
    vector = vectors["standard_webhooks"][0]
    headers = {
        "webhook-id": vector["msg_id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["signature"],
    }
    request = [(headers, vector["body"].encode())]
    then = Receiver(vector["secret"], dialect="royal", clock=FixedClock(at=vector["timestamp"] + 240))
    today = Receiver(vector["secret"], dialect="royal")
    assert _exchange(then, request) == [200]
    assert _exchange(today, request) == [401]
    assert then.received[0].at == vector["timestamp"] + 240


@pytest.mark.parametrize("dialect", ["royal", "tectra"])
def test_receiver_with_several_secrets_accepts_any_of_them(dialect: str) -> None:
    new, old, stranger = new_secret(), new_secret(), new_secret()
    if dialect == "royal":
        requests = [(_royal(s, time.time()), ROYAL_BODY) for s in (new, old, stranger)]
    else:
        requests = [(_signed(secret=s), BODY) for s in (new, old, stranger)]
    receiver = Receiver([new, old], dialect=dialect)
    assert _exchange(receiver, requests) == [200, 200, 401]
    assert receiver.secret == new


def test_receiver_refuses_a_secret_its_dialect_cannot_use() -> None:
    with pytest.raises(ValueError, match="royal webhook secret"):
        Receiver("whsec_a", dialect="royal")
    with pytest.raises(ValueError, match="no webhook secret"):
        Receiver([], dialect="royal")


def test_serve_forever_listens_for_royal_webhooks() -> None:
    secret = new_secret()
    lines: list[str] = []

    async def main() -> int:
        server = asyncio.ensure_future(serve_forever(0, secret, printer=lines.append, dialect="royal"))
        try:
            async with asyncio.timeout(10):
                while not lines:
                    await asyncio.sleep(0.01)
            url = lines[0].split(" on ")[1].split(" ")[0]
            async with aiohttp.ClientSession() as session:
                async with session.post(url, data=ROYAL_BODY, headers=_royal(secret, time.time(), "evt_cli")) as got:
                    return got.status
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)

    assert asyncio.run(main()) == 200
    assert lines[0].startswith("Listening for royal webhooks on http://127.0.0.1:")
    assert "evt_cli" in lines[1] and "provenance.registration.complete" in lines[1] and "signature ok" in lines[1]


@pytest.mark.parametrize("body", [b'{"event":"content.signed"', b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_json_object_gets_400(body: bytes) -> None:
    headers = tectra.headers(SECRET, "content.signed", "dlv_bad", "2025-06-14T09:32:00Z", body)

    async def main() -> tuple[int, dict]:
        receiver = Receiver(SECRET)
        await receiver.start()
        try:
            return await _post(receiver, headers, body)
        finally:
            await receiver.stop()

    assert asyncio.run(main()) == (400, {"error": "Body is not a JSON object"})


def test_a_replayed_delivery_gets_the_answer_it_got_the_first_time() -> None:
    bad = b'{"event":'
    requests = [
        (_signed("dlv_ok"), BODY),
        (_signed("dlv_ok"), BODY),
        (tectra.headers(SECRET, "content.signed", "dlv_bad", "2025-06-14T09:32:00Z", bad), bad),
        (tectra.headers(SECRET, "content.signed", "dlv_bad", "2025-06-14T09:32:00Z", bad), bad),
        (tectra.headers(SECRET, "content.signed", "dlv_bad", "2025-06-14T09:32:00Z", BODY), BODY),
    ]
    assert _exchange(Receiver(SECRET), requests) == [200, 200, 400, 400, 200]


def test_the_receiver_remembers_a_bounded_number_of_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("emitter.receiver.REMEMBERED", 2)
    receiver = Receiver(SECRET)
    bad = b"[]"
    requests = [
        (tectra.headers(SECRET, "content.signed", f"dlv_{n}", "2025-06-14T09:32:00Z", bad), bad) for n in range(3)
    ]
    assert _exchange(receiver, requests) == [400, 400, 400]
    assert list(receiver._answers) == ["dlv_1", "dlv_2"]
