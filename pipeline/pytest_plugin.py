"""pytest fixtures for testing webhook receivers against provsim: `provsim_sim` and `webhook_receiver`."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from emitter import safejson

if TYPE_CHECKING:
    from emitter.endpoint import Endpoint
    from emitter.receiver import Receiver
    from pipeline.runner import RunReport
    from pipeline.trigger import Fired

# The pipeline and the receiver (aiohttp) are imported inside the functions that use them: once installed,
# this plugin loads with every pytest run, and those imports cost seconds only tests using the fixtures should pay.

TIME_SCALE = 1e-5  # every retry wait, Royal's 8 attempts included, adds up to about a second
BATCH_SIZE = 8
BATCH_INTERVAL = 0.5
LOOP_TIMEOUT = 10.0


class ProvsimSim:
    """An in-process provsim on the embedded chain with its own data directory, driven synchronously."""

    def __init__(self, data_dir: Path):
        """Open the service (the chain and the worker start on first use)."""
        from pipeline.service import Service
        from pipeline.settings import Settings

        self.service = Service(Settings(data_dir=data_dir, batch_size=BATCH_SIZE, batch_interval=BATCH_INTERVAL,
                                        workers=1, time_scale=TIME_SCALE))

    def register(self, url: str, secret: str | None = None, dialect: str = "tectra",
                 events: Iterable[str] | None = None) -> Endpoint:
        """Add an endpoint (a secret is generated unless given); returns it, secret included."""
        from emitter.endpoint import Endpoint

        endpoint = Endpoint.new(url, secret=secret, events=events, dialect=dialect, persistent=False)
        self.service.add_transient_endpoints([endpoint])
        return endpoint

    def run(self, paths: str | os.PathLike | Iterable[str | os.PathLike], context: dict | None = None) -> RunReport:
        """Register, sign, batch and anchor files (or directories, URLs), deliver every event, and report."""
        from pipeline.runner import run_pipeline

        sources = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        return asyncio.run(run_pipeline(self.service, [os.fspath(p) for p in sources], context=context))

    def trigger(self, name: str, seed: int | None = None, context: dict | None = None,
                **overrides: object) -> list[Fired]:
        """Fire a scenario or one event type (overrides: data__context__user_id=42) at the endpoints of its dialect."""
        from pipeline import scenarios
        from pipeline.event_schemas import DIALECT_OF
        from pipeline.trigger import fire

        if name in scenarios.SCENARIOS:
            if overrides:
                raise TypeError(f"{name} is a scenario: overrides apply to a single event type only")
            dialect, events = scenarios.SCENARIOS[name].dialect, scenarios.scenario_events(name, seed, context)
        else:
            dotted = {key.replace("__", "."): value for key, value in overrides.items()}
            events = [scenarios.event_of(name, seed, context, dotted)]
            dialect = DIALECT_OF[name]
        targets = [ep for ep in self.service.endpoints() if ep.dialect == dialect]
        if not targets:
            raise LookupError(f"no {dialect} endpoint to trigger {name} at: call provsim_sim.register(url, "
                              f"secret, dialect={dialect!r}) first")
        return [fired for ep in targets
                for fired in fire([e for e in events if ep.wants(e.type)], ep.url, ep.secret, dialect)]

    def verify(self, path: str | os.PathLike) -> dict:
        """Run the four checks on a file, announce the result as content.verified, and return its data."""
        from pipeline.runner import deliver_outbox
        from pipeline.verify import verify_file

        data = verify_file(self.service, Path(path))
        self.service.emit_verified(data)
        asyncio.run(deliver_outbox(self.service))
        return data

    def close(self) -> None:
        """Stop the worker processes and the chain, and close the database."""
        self.service.close()


class WebhookReceiver:
    """A signature-checking receiver on 127.0.0.1: what arrived, and waiting for what should."""

    def __init__(self, receiver: Receiver, dialect: str):
        """Wrap a started receiver."""
        self._receiver = receiver
        self.dialect = dialect

    @property
    def url(self) -> str:
        """Where to send webhooks (any path is accepted)."""
        return self._receiver.url

    @property
    def secret(self) -> str:
        """The secret signatures are checked with."""
        return self._receiver.secret

    @property
    def events(self) -> list[dict]:
        """The JSON bodies of every request whose signature held, in arrival order (redeliveries included)."""
        return [body for _, body in self._verified()]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The verified events of this type once at least `count` arrived; AssertionError listing arrivals if not."""
        __tracebackhide__ = True  # a failure points at the user's test, not at this helper
        deadline = time.monotonic() + timeout
        while True:
            found = [body for kind, body in self._verified() if kind == event_type]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} verified {event_type!r} webhook(s) at {self.url} within "
                                     f"{timeout}s, got {len(found)}; arrived: {self._arrivals()}")
            time.sleep(0.02)

    def _verified(self) -> list[tuple[str | None, dict]]:
        """(event type, body) of each request whose signature held and whose body is a JSON object."""
        pairs = []
        for request in list(self._receiver.received):
            try:
                body = safejson.loads(request.body) if request.verified else None
            except ValueError:
                body = None
            if isinstance(body, dict):
                pairs.append((request.event_type, body))
        return pairs

    def _arrivals(self) -> str:
        """Every request so far, counted by event type, with those whose signature failed apart."""
        requests = list(self._receiver.received)
        counts = Counter(r.event_type for r in requests if r.verified)
        parts = [f"{kind} x{n}" for kind, n in counts.items()]
        rejected = sum(1 for r in requests if not r.verified)
        if rejected:
            parts.append(f"{rejected} with a bad signature (answered 401)")
        return ", ".join(parts) or "nothing"


@pytest.fixture
def provsim_sim(tmp_path_factory: pytest.TempPathFactory):
    """An in-process provsim (embedded chain, fresh data directory, fast retries), closed after the test."""
    sim = ProvsimSim(tmp_path_factory.mktemp("provsim"))
    yield sim
    sim.close()


@pytest.fixture
def webhook_receiver():
    """Factory: webhook_receiver(secret=None, dialect="tectra") starts a verifying receiver on 127.0.0.1."""
    from emitter.endpoint import new_secret
    from emitter.receiver import Receiver

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook_receiver", daemon=True)
    thread.start()
    started: list[Receiver] = []

    async def start(secret: str, dialect: str) -> Receiver:
        """Make and start a receiver inside the loop's thread."""
        receiver = Receiver(secret, dialect=dialect)
        await receiver.start("127.0.0.1", 0)
        return receiver

    def make(secret: str | None = None, dialect: str = "tectra") -> WebhookReceiver:
        """Start a receiver checking signatures with `secret` (generated unless given) in `dialect`."""
        future = asyncio.run_coroutine_threadsafe(start(secret or new_secret(), dialect), loop)
        started.append(future.result(LOOP_TIMEOUT))
        return WebhookReceiver(started[-1], dialect)

    yield make
    try:
        for receiver in started:
            asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(LOOP_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(LOOP_TIMEOUT)
        loop.close()
