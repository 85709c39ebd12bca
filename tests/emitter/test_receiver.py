"""Reference receiver on loopback: 200 on a good signature, else 401; fail_first, log lines, dump file, CLI loop."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import httpx
import pytest

from emitter.dialects import tectra
from emitter.receiver import Receiver

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
