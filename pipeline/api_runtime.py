"""What a long-lived server runs beside its routes: the service, a batcher, the chain worker, delivery."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import Request

from emitter.clock import Clock
from emitter.engine import DeliveryEngine
from emitter.sender import AiohttpSender, Sender

from . import api_auth
from .batcher import Batcher
from .ingest import make_client
from .lifecycle import ChainWorker
from .service import Service
from .settings import Settings

log = logging.getLogger("provsim.api")
RESTART_DELAY = 1.0  # seconds before a background task that crashed runs again


@dataclass(frozen=True)
class Network:
    """How the server reaches out: an httpx transport for downloads, a sender for webhooks (None: the real network)."""

    download_transport: httpx.AsyncBaseTransport | None = None
    sender: Sender | None = None


class Runtime:
    """Opens the service and keeps the batcher, chain worker and delivery engine running until stop()."""

    def __init__(self, settings: Settings, shutdown_grace: float = 10.0, network: Network = Network()):
        self.settings = settings
        self.shutdown_grace = shutdown_grace
        self.network = network
        self.service: Service | None = None
        self.client: httpx.AsyncClient | None = None
        self.engine: DeliveryEngine | None = None
        self.chain_worker: ChainWorker | None = None
        self.batcher: Batcher | None = None
        self._stack = AsyncExitStack()
        self._inputs_done = asyncio.Event()  # set at shutdown: the chain worker finishes what is open
        self._chain_done = asyncio.Event()  # set once it did: the engine may end when nothing is pending
        self._tasks: list[asyncio.Task] = []

    @property
    def uploads(self) -> Path:
        """Where uploaded files are stored."""
        return self.settings.data_dir / "uploads"

    @property
    def downloads(self) -> Path:
        """Where files fetched from URLs are stored."""
        return self.settings.data_dir / "downloads"

    async def start(self) -> None:
        """Open the service and its chain, then start the background tasks; pick up unbatched records."""
        service = self.service = Service(self.settings)
        self._stack.callback(service.close)
        _ = service.pool  # the analysis workers start importing while the chain opens
        _ = service.chain
        for note in service.notes:
            log.warning("%s", note)
        api_auth.init_schema(service.store)
        sender = self.network.sender or await self._stack.enter_async_context(AiohttpSender())
        client = make_client(self.network.download_transport, allow_private=self.settings.allow_private)
        self.client = await self._stack.enter_async_context(client)
        self.engine = DeliveryEngine(service.store.path, Clock(self.settings.time_scale), sender)
        self.chain_worker = ChainWorker(service, confirmations=self.settings.confirmations,
                                        mint=self.settings.mint_nfts, on_note=self._note,
                                        on_anchored=lambda batch_id, event_id: self.engine.notify(),
                                        on_events=self.engine.notify)
        self.batcher = Batcher(self.settings.batch_size, self.settings.batch_interval, self._close_batch)
        self._tasks = [
            asyncio.create_task(self._supervise("chain worker", lambda: self.chain_worker.run(self._inputs_done),
                                                self._inputs_done)),
            asyncio.create_task(self._supervise("delivery engine", lambda: self.engine.run_until_idle(self._chain_done),
                                                self._chain_done)),
        ]
        for record_id in service.store.unbatched_record_ids():
            self.batcher.add(record_id)

    def accepted(self, record_ids: list[str]) -> None:
        """Records were just registered: batch them and deliver their events."""
        for record_id in record_ids:
            self.batcher.add(record_id)
        self.engine.notify()

    def _close_batch(self, record_ids: list[str]) -> None:
        """Store a closed batch and wake the chain worker; a failure leaves the records for the next start."""
        try:
            self.service.close_batch(record_ids)
        except Exception:
            log.exception("could not close a batch of %d records; they stay unbatched until restart", len(record_ids))
            return
        self.chain_worker.wake()

    @staticmethod
    def _note(line: str) -> None:
        """What the chain worker waits for or recovers from."""
        log.warning("chain: %s", line)

    @staticmethod
    async def _supervise(name: str, run: Callable[[], Awaitable], done: asyncio.Event) -> None:
        """Run a background loop; if it crashes, log it and run it again until it ends after `done`."""
        while True:
            try:
                await run()
                return
            except Exception:
                log.exception("%s crashed; restarting in %.0fs", name, RESTART_DELAY)
            if done.is_set():
                return
            await asyncio.sleep(RESTART_DELAY)

    async def stop(self) -> None:
        """Close the open batch, let the chain worker finish and due deliveries go out (bounded), close all."""
        try:
            if self.batcher is not None:
                self.batcher.flush()
            if self._tasks:
                chain_task, engine_task = self._tasks
                self._inputs_done.set()
                await self._finish_chain_work(chain_task)
                self._chain_done.set()
                await self._deliver_due(engine_task)
        finally:
            await self._stack.aclose()

    async def _deliver_due(self, engine_task: asyncio.Task) -> None:
        """Let the engine send what is due now (within the grace period); later retries wait for the next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_grace
        while not engine_task.done() and self._due_deliveries() and loop.time() < deadline:
            await asyncio.wait({engine_task}, timeout=0.05)
        if not engine_task.done():
            engine_task.cancel()  # the engine puts what it holds back to pending
            await asyncio.gather(engine_task, return_exceptions=True)

    def _due_deliveries(self) -> int:
        """Deliveries being sent now or due to be (not those waiting for a later retry)."""
        return self.service.store.conn.execute(
            "SELECT COUNT(*) FROM wh_deliveries WHERE status = 'delivering'"
            " OR (status = 'pending' AND next_attempt_at <= ?)", (time.time(),)).fetchone()[0]

    async def _finish_chain_work(self, chain_task: asyncio.Task) -> None:
        """Wait up to the grace period for the chain worker to anchor what is open, then cancel it."""
        _, pending = await asyncio.wait({chain_task}, timeout=self.shutdown_grace)
        if pending:
            log.warning("chain worker still busy after %.0fs: stopping it; its batches resume at the next start",
                        self.shutdown_grace)
            chain_task.cancel()
            await asyncio.gather(chain_task, return_exceptions=True)


def runtime(request: Request) -> Runtime:
    """The running server's Runtime."""
    return request.app.state.runtime
