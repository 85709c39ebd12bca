"""Support for the API tests: a real uvicorn server, webhook receivers and a file server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from aiohttp import web
from PIL import Image

from emitter.receiver import Receiver
from pipeline.api import create_app
from pipeline.api_auth import create_api_key
from pipeline.api_runtime import Network
from pipeline.ingest import Caps
from pipeline.service import Service
from pipeline.settings import Settings

TIMEOUT = 30.0  # seconds any single wait in these tests may take
CAP = 256 * 1024  # upload cap (images and others) of the test servers


def server_settings(data_dir: Path, **overrides) -> Settings:
    """Small, fast settings: batches of 4 or 0.2 s, retry waits scaled to milliseconds, one worker, loopback downloads."""
    values = dict(data_dir=data_dir, batch_size=4, batch_interval=0.2, time_scale=0.001, workers=1,
                  caps=Caps(image=CAP, other=CAP), allow_private=True)
    return Settings(**{**values, **overrides})


def image_bytes(seed: int, size: tuple[int, int] = (96, 64)) -> bytes:
    """A small JPEG of random 8x8 blocks: different seeds give clearly different perceptual hashes."""
    blocks = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize(size, Image.NEAREST).save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_keys(settings: Settings, *tenants: str) -> dict[str, str]:
    """An API key per tenant, made in the data directory before the server opens it."""
    service = Service(settings)
    try:
        return {tenant: create_api_key(service, tenant) for tenant in tenants}
    finally:
        service.close()


class ApiServer:
    """create_app(settings) served by uvicorn in a thread on a socket bound to 127.0.0.1:0."""

    def __init__(self, settings: Settings, network: Network = Network()):
        self.settings = settings
        # proto given: asyncio turns TCP_NODELAY on only for sockets that say they are TCP (no 40 ms stalls)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, shutdown_grace=5.0, network=network), lifespan="on",
                                log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> "ApiServer":
        """Start serving; AssertionError if it is not up within TIMEOUT."""
        self._thread.start()
        deadline = time.monotonic() + TIMEOUT
        while not self._server.started:
            assert self._thread.is_alive(), "the API server thread ended during startup"
            assert time.monotonic() < deadline, "the API server did not start in time"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the shutdown (background work included) to finish."""
        self._server.should_exit = True
        self._thread.join(TIMEOUT)
        self._sock.close()
        assert not self._thread.is_alive(), "the API server did not stop in time"

    def client(self, key: str | None) -> httpx.Client:
        """An HTTP client for this server, sending `key` as a Bearer token when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)


class Loop:
    """An asyncio loop in its own thread, for the receivers and the file server."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine, timeout: float = TIMEOUT):
        """Run a coroutine on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


class WebhookReceiver:
    """emitter.receiver.Receiver on 127.0.0.1, driven from test code."""

    def __init__(self, loop: Loop, secret: str | list[str], dialect: str = "tectra", fail_first: int = 0):
        self._loop = loop
        self.receiver: Receiver = loop.run(self._make(secret, dialect, fail_first))
        self.url = self.receiver.url

    async def _make(self, secret, dialect: str, fail_first: int) -> Receiver:
        """Create and start the receiver on the loop."""
        receiver = Receiver(secret, dialect=dialect, fail_first=fail_first)
        await receiver.start("127.0.0.1", 0)
        return receiver

    def wait_until(self, condition: Callable[[list], bool], timeout: float = TIMEOUT) -> list:
        """Wait until `condition(received)` holds; AssertionError with what arrived otherwise."""
        deadline = time.monotonic() + timeout
        while not condition(list(self.receiver.received)):
            if time.monotonic() > deadline:
                got = [(r.event_type, r.verified) for r in self.receiver.received]
                raise AssertionError(f"webhooks did not arrive in {timeout}s; got {got}")
            time.sleep(0.02)
        return list(self.receiver.received)

    def stop(self) -> None:
        """Stop listening."""
        self._loop.run(self.receiver.stop())


class FileServer:
    """Serves fixed bytes at fixed paths over HTTP on 127.0.0.1 (404 elsewhere)."""

    def __init__(self, loop: Loop, files: dict[str, bytes]):
        self._loop = loop
        self.files = files
        self._runner: web.AppRunner | None = None
        self.url = loop.run(self._start())

    async def _start(self) -> str:
        """Start the aiohttp app and return its base URL."""
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _serve(self, request: web.Request) -> web.Response:
        """The file's bytes as image/jpeg, or 404."""
        body = self.files.get(request.match_info["name"])
        if body is None:
            return web.Response(status=404, text="not here")
        return web.Response(body=body, content_type="image/jpeg")

    def stop(self) -> None:
        """Stop serving."""
        self._loop.run(self._runner.cleanup())


def poll(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
    """Call `fetch` until `done` holds for its result; AssertionError with the last result otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        last = fetch()
        if done(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last: {last}")
        time.sleep(0.05)


def raw_request(port: int, head: str, body_parts: list[bytes], timeout: float = 10.0) -> tuple[int, bytes]:
    """Send a request head and some body bytes over a plain socket, then read the answer (status, body).

    The body may be left unfinished on purpose: a server that waits for all of it never answers,
    and the read times out.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n")
        for part in body_parts:
            sock.sendall(part)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response head; got {data!r}"
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in head_bytes.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the response body ended"
            rest += chunk
        return status, rest[:length]
