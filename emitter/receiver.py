"""Reference webhook receiver (aiohttp.web): verifies each request with its dialect, logs it, answers."""

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from emitter import dialects, safejson
from emitter.clock import Clock, iso_utc
from emitter.dialects.keys import secret_list

REMEMBERED = 100_000
# Ids and event types are printed as sent only when they look like ids: a forged header must not pass markup
# or control characters to the console the line is printed on.
_SHOWN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class Received:
    """One request the receiver got, whether or not its signature held."""

    # delivery_id is the id the dialect announces: Tectra's X-Tectra-Delivery, or for Standard Webhooks
    # the message id. webhook_id is the Standard Webhooks message id (webhook-id, else svix-id), if any.

    delivery_id: str | None
    event_type: str | None
    verified: bool
    body: bytes
    headers: dict
    at: float
    webhook_id: str | None = None


class Receiver:
    """An HTTP server taking signed webhooks on any path: 200 if the signature holds, else 401."""

    # secret may be several (the receiver's own rotation): a request passes if one of them verifies it.
    # Timestamped schemes (royal) also refuse a request outside their tolerance of clock.now().
    # A signed body that is not a JSON object gets 400. A delivery id seen before with the same body gets
    # the answer it got then (the last REMEMBERED ids are kept), so a redelivery is answered alike.
    # fail_first answers 500 to the first N requests whatever they carry, to exercise retries.

    def __init__(
        self,
        secret: str | Sequence[str],
        dialect: str = "tectra",
        on_event: Callable[[str], object] | None = None,
        dump_path: Path | None = None,
        fail_first: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.secrets = secret_list(secret)
        self.secret = self.secrets[0]
        self.dialect = dialects.get(dialect)
        for key in self.secrets:
            self.dialect.check_secret(key)
        self.clock = clock if clock is not None else Clock()
        self.on_event = on_event
        self.dump_path = Path(dump_path) if dump_path is not None else None
        self.fail_first = fail_first
        self.received: list[Received] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()
        self._answers: OrderedDict[str, tuple[bytes, int, dict]] = OrderedDict()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start listening; returns the bound port (useful with port=0) and sets .url; OSError if taken."""
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:
            await self.stop()
            raise OSError(exc.errno, f"cannot listen on {host}:{port} ({exc.strerror}): choose another port") from exc
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}/"
        return bound

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout: float) -> list[Received]:
        """Wait until at least `count` requests arrived; TimeoutError saying how many did otherwise."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.received) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise TimeoutError(f"received {len(self.received)} of {count} webhooks within {timeout}s") from None
        return self.received

    async def _handle(self, request: web.Request) -> web.Response:
        """Verify, record, report and answer one request."""
        body = await request.read()
        now = self.clock.now()
        verified = any(self.dialect.verify_request(key, request.headers, body, now) for key in self.secrets)
        delivery_id, event_type = self.dialect.identify(request.headers, body)
        webhook_id = _webhook_id(request.headers)
        if len(self.received) < self.fail_first:
            status, answer = 500, {"error": "Failing on purpose (fail_first)"}
        elif not verified:
            status, answer = 401, {"error": "Invalid signature"}
        else:
            status, answer = self._answer(delivery_id, body)
        self.received.append(
            Received(delivery_id, event_type, verified, body, dict(request.headers), now, webhook_id)
        )
        self._arrived.set()
        if self.on_event is not None:
            check = "signature ok" if verified else "INVALID SIGNATURE"
            self.on_event(f"{iso_utc(now)}  {_shown(event_type)}  {_shown(delivery_id)}  {check}  -> {status}")
        if self.dump_path is not None:
            self._dump(now, delivery_id, event_type, verified, status, dict(request.headers), body)
        return web.json_response(answer, status=status)

    def _answer(self, delivery_id: str | None, body: bytes) -> tuple[int, dict]:
        """The answer to a verified request: a replay's earlier answer, 400 unless a JSON object, else 200."""
        digest = hashlib.sha256(body).digest()
        seen = self._answers.get(delivery_id) if delivery_id else None
        if seen is not None and seen[0] == digest:
            return seen[1], seen[2]
        try:
            payload = safejson.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            status, answer = 200, {"received": True}
        else:
            status, answer = 400, {"error": "Body is not a JSON object"}
        if delivery_id:
            self._answers[delivery_id] = (digest, status, answer)
            self._answers.move_to_end(delivery_id)
            if len(self._answers) > REMEMBERED:
                self._answers.popitem(last=False)
        return status, answer

    def _dump(
        self, now: float, delivery_id: str | None, event_type: str | None, verified: bool,
        status: int, headers: dict, body: bytes,
    ) -> None:
        """Append one JSON line describing a request to dump_path."""
        try:
            payload = safejson.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        line = {
            "at": iso_utc(now), "delivery_id": delivery_id, "event_type": event_type,
            "verified": verified, "status": status, "headers": headers, "payload": payload,
        }
        # backslashreplace: a lone surrogate (a "\ud800" escape in the body, a header byte that is not UTF-8)
        # is written as its escape, which keeps the line valid JSON instead of failing the request.
        with self.dump_path.open("a", encoding="utf-8", errors="backslashreplace") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _shown(value: str | None) -> str:
    """A header-borne value as a log line shows it: itself if it looks like an id or event name, else a placeholder."""
    if value is None:
        return "None"
    return value if _SHOWN.fullmatch(value) else "(unprintable)"


def _webhook_id(headers: Mapping[str, str]) -> str | None:
    """The Standard Webhooks message id of a request (webhook-id, else svix-id), None if it has neither."""
    return headers.get("webhook-id") or headers.get("svix-id")


async def serve_forever(
    port: int,
    secret: str | Sequence[str],
    dump: Path | None = None,
    host: str = "127.0.0.1",
    printer: Callable[[str], object] = print,
    dialect: str = "tectra",
) -> None:
    """Run a Receiver that prints one line per webhook until cancelled."""
    receiver = Receiver(secret, dialect=dialect, on_event=printer, dump_path=dump)
    bound = await receiver.start(host, port)
    printer(f"Listening for {dialect} webhooks on http://{host}:{bound}/ (Ctrl-C to stop)")
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.stop()


def run_listener(
    port: int,
    secret: str | Sequence[str],
    dump: Path | None = None,
    host: str = "127.0.0.1",
    printer: Callable[[str], object] = print,
    dialect: str = "tectra",
) -> None:
    """Serve webhooks in the foreground until Ctrl-C (for `provsim listen`)."""
    try:
        asyncio.run(serve_forever(port, secret, dump, host, printer, dialect))
    except KeyboardInterrupt:
        printer("Stopped listening.")
