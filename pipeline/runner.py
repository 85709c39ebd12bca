"""One run of the pipeline: ingest, fingerprint, sign, watermark, batch, anchor and deliver, concurrently."""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emitter import outbox
from emitter.clock import Clock
from emitter.engine import DeliveryEngine
from emitter.sender import AiohttpSender, Sender

from . import marking
from .analyze import Analysis, analyze_files
from .batcher import Batcher
from .digest import IngestError
from .fingerprint import fingerprint
from .ingest import SourceItem, expand_sources, fetch, make_client
from .lifecycle import ChainWorker
from .records import Batch, Record
from .service import Service

ItemCallback = Callable[[str, str], None]
CHUNK = 8  # files per worker call: fewer round trips, still an even spread over the workers


@dataclass
class RunReport:
    """What a run did: items accepted or refused, batches anchored, deliveries made."""

    items: int = 0
    registered: list[Record] = field(default_factory=list)
    known: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    deliveries: dict = field(default_factory=dict)
    storage_error: str | None = None  # the database refused a write and the run stopped (also in errors)
    marked: dict[str, marking.MarkedCopy] = field(default_factory=dict)  # watermarked copies written, by record id

    @property
    def exit_code(self) -> int:
        """0 all good; bit 1: deliveries failed or the run stopped on a storage error; bit 2: inputs refused."""
        code = 0
        if self.deliveries.get("failed") or self.storage_error:
            code |= 1
        if self.errors:
            code |= 2
        return code


class _Run:
    """The moving parts of one run: analysis pool, batcher, anchorer and delivery engine."""

    def __init__(self, service: Service, engine: DeliveryEngine, pool: ProcessPoolExecutor,
                 client: httpx.AsyncClient, origin_type: str | None, context: dict | None,
                 on_item: ItemCallback | None, on_note: Callable[[str], None] | None):
        self.service = service
        self.engine = engine
        self.pool = pool
        self.client = client
        self.origin_type = origin_type
        self.context = context
        self.on_item = on_item or (lambda outcome, label: None)
        self.on_note = on_note or (lambda line: None)
        self.report = RunReport()
        settings = service.settings
        self.chain_worker = ChainWorker(service, confirmations=settings.confirmations, mint=settings.mint_nfts,
                                        on_note=self._note, on_anchored=self._anchored,
                                        on_events=self.engine.notify)
        self.batch_ids: dict[str, None] = {}  # anchored in this run, in order
        self.batcher = Batcher(settings.batch_size, settings.batch_interval, self._close_batch)
        self.slots = asyncio.Semaphore(settings.workers * 2)
        self.marking: list[asyncio.Task] = []

    def _close_batch(self, record_ids: list[str]) -> None:
        """Store the closed batch; the chain worker picks it up (on a storage error the next run batches them)."""
        try:
            self.service.close_batch(record_ids)
        except sqlite3.Error as exc:
            self._storage_failed(exc)
            return
        self.chain_worker.wake()

    def _storage_failed(self, exc: sqlite3.Error) -> None:
        """The database refused a write: take no more work and say so once; every commit before it stands."""
        if self.report.storage_error is None:
            line = storage_error_line(self.service.store.path, exc)
            self.report.storage_error = line
            self.report.errors.append(line)

    async def chain(self, inputs_done: asyncio.Event) -> None:
        """Run the chain worker until it is done, or until the database refuses a write."""
        try:
            await self.chain_worker.run(inputs_done)
        except sqlite3.Error as exc:
            self._storage_failed(exc)

    async def deliver(self, producers_done: asyncio.Event) -> None:
        """Run the delivery engine until it is idle, or until the database refuses a write."""
        try:
            await self.engine.run_until_idle(producers_done)
        except sqlite3.Error as exc:
            self._storage_failed(exc)

    def _anchored(self, batch_id: str, event_id: str) -> None:
        """A batch was confirmed and announced: deliver the event now."""
        self.batch_ids[batch_id] = None
        self.report.event_ids.append(event_id)
        self.engine.notify()

    def _note(self, line: str) -> None:
        """Pass on what the chain worker is waiting for or recovering from."""
        self.report.notes.append(line)
        self.on_note(line)

    def resume(self) -> None:
        """Batch what a previous, interrupted run accepted but did not batch (closed batches need nothing)."""
        for record_id in self.service.store.unbatched_record_ids():
            self.batcher.add(record_id)

    async def feed(self, items: Sequence[SourceItem | IngestError]) -> None:
        """Analyse and register every item: local files in small chunks per worker call, URLs one by one."""
        files = [i for i in items if isinstance(i, SourceItem) and i.kind == "file"]
        urls = [i for i in items if isinstance(i, SourceItem) and i.kind == "url"]
        for refused in (i for i in items if isinstance(i, IngestError)):
            self._refuse(str(refused))
        size = max(1, min(CHUNK, len(files) // (self.service.settings.workers * 4)))
        chunks = [files[i:i + size] for i in range(0, len(files), size)]
        await asyncio.gather(*(self._files(c) for c in chunks), *(self._url(u) for u in urls))

    async def _files(self, chunk: list[SourceItem]) -> None:
        """Hash and fingerprint a chunk of files in a worker, then register them."""
        caps = self.service.settings.caps
        async with self.slots:
            if self.report.storage_error:
                return
            results = await asyncio.get_running_loop().run_in_executor(
                self.pool, analyze_files, [i.location for i in chunk], caps.image, caps.other
            )
        self._register([(item, result, item.location) for item, result in zip(chunk, results)])

    async def _url(self, item: SourceItem) -> None:
        """Download (hashing as it streams), fingerprint in a worker, then register."""
        settings = self.service.settings
        path: Path | None = None
        async with self.slots:
            if self.report.storage_error:
                return
            try:
                download_dir = settings.data_dir / "downloads"
                download_dir.mkdir(parents=True, exist_ok=True)
                path, digest = await fetch(item, download_dir, self.client, settings.caps)
                try:
                    fp = await asyncio.get_running_loop().run_in_executor(self.pool, fingerprint, str(path))
                except IngestError as exc:  # name the URL given, not the local copy, and keep no refused file
                    path.unlink(missing_ok=True)
                    raise IngestError(item.display_name, exc.cause) from None
                result: Analysis | IngestError = Analysis(digest=digest, fingerprint=fp)
            except IngestError as exc:
                result = exc
            except Exception as exc:  # bad input must never take the run down
                result = IngestError(item.display_name, f"{type(exc).__name__}: {exc}")
        self._register([(item, result, str(path) if path else "")])

    def _register(self, analysed: list[tuple[SourceItem, Analysis | IngestError, str]]) -> None:
        """Register the analysed items (item, analysis, local file) of one chunk in one transaction; report the
        refused ones; then start the watermark stage on them."""
        good = [(item, a, local) for item, a, local in analysed if isinstance(a, Analysis)]
        for _, refused, _ in (p for p in analysed if not isinstance(p[1], Analysis)):
            self._refuse(str(refused))
        if not good or self.report.storage_error:
            return
        try:
            results = self.service.register_many(
                [(a, item.location, Path(item.display_name).name) for item, a, _ in good],
                self.origin_type, self.context,
            )
        except sqlite3.Error as exc:  # disk full, read-only: one line, and the run stops taking items
            self._storage_failed(exc)
            return
        except Exception as exc:  # anything else about these items: name every item, go on
            for item, _, _ in good:
                self._refuse(f"{item.display_name}: not registered: {type(exc).__name__}: {exc}")
            return
        for (item, _, local), (rec, event_id) in zip(good, results):
            if self.service.settings.watermark and self.service.needs_mark(rec):
                self.marking.append(asyncio.create_task(self._mark(rec, local, item.display_name)))
            if event_id is None:
                self.report.known.append(rec)
                self.on_item("known", rec.original_filename)
                continue
            self.report.registered.append(rec)
            self.report.event_ids.append(event_id)
            self.batcher.add(rec.id)
            self.on_item("registered", rec.original_filename)
        self.engine.notify()

    async def _mark(self, rec: Record, local: str, label: str) -> None:
        """Write a registered image's watermarked copy and keep it; a failure is one line, the record stands."""
        async with self.slots:
            if self.report.storage_error:
                return
            try:
                self.report.marked[rec.id] = await self.service.write_marked_copy(rec, local)
            except IngestError as exc:
                self._refuse(f"{label}: {exc.cause}")
            except sqlite3.Error as exc:
                self._storage_failed(exc)

    def _refuse(self, message: str) -> None:
        """Count one refused item with its one-line reason."""
        self.report.errors.append(message)
        self.on_item("error", message)


async def run_pipeline(
    service: Service,
    sources: Sequence[str],
    *,
    origin_type: str | None = None,
    context: dict | None = None,
    sender: Sender | None = None,
    on_item: ItemCallback | None = None,
    on_total: Callable[[int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RunReport:
    """Run every source through the pipeline and deliver every event it caused (and any left over)."""
    settings = service.settings
    pool = service.pool  # workers start importing while the chain opens
    _ = service.chain  # open the chain and deploy the registry before the first batch
    unfinished = _unfinished_event_ids(service)
    mark = outbox.event_mark(service.store.conn)  # every event after it is this run's, whatever the dialect
    items = list(expand_sources(sources))
    if on_total:
        on_total(len(items))
    async with AsyncExitStack() as stack:
        active_sender = sender or await stack.enter_async_context(AiohttpSender())
        client = await stack.enter_async_context(make_client(allow_private=settings.allow_private))
        engine = DeliveryEngine(service.store.path, Clock(settings.time_scale), active_sender)
        run = _Run(service, engine, pool, client, origin_type, context, on_item, on_note)
        run.report.items = len(items)
        inputs_done, producers_done = asyncio.Event(), asyncio.Event()
        engine_task = asyncio.create_task(run.deliver(producers_done))
        chain_task = asyncio.create_task(run.chain(inputs_done))
        run.resume()
        await run.feed(items)
        run.batcher.flush()  # the input has ended: no later leaf can join the open batch
        inputs_done.set()
        await asyncio.gather(*run.marking)
        await chain_task
        producers_done.set()
        await engine_task
    run.report.batches = [service.store.batch(b) for b in run.batch_ids]
    caused = outbox.events_since(service.store.conn, mark)
    run.report.deliveries = outbox.summary(service.store.conn, event_ids=unfinished + caused)
    return run.report


def storage_error_line(db: Path, exc: sqlite3.Error, stopped: str = "the run") -> str:
    """One line for a write the database refused, naming the real cause rather than a failed rollback after it."""
    cause: BaseException = exc
    while "cannot rollback" in str(cause) and isinstance(cause.__context__, sqlite3.Error):
        cause = cause.__context__
    return (f"database {db} refused a write ({cause}): {stopped} stopped; everything committed before is kept:"
            " free space or make it writable, then run the same command again")


def _unfinished_event_ids(service: Service) -> list[str]:
    """Events whose deliveries an earlier run left pending: this run delivers them too."""
    rows = outbox.list_deliveries(service.store.conn, status="pending") + \
        outbox.list_deliveries(service.store.conn, status="delivering")
    return sorted({row["event_id"] for row in rows})


async def deliver_outbox(service: Service, sender: Sender | None = None, per_endpoint: int = 16) -> dict:
    """Deliver everything waiting in the outbox (retries included); returns the delivery counts.

    per_endpoint=1 sends each endpoint's deliveries one at a time, in the order they are due.
    """
    async with AsyncExitStack() as stack:
        active_sender = sender or await stack.enter_async_context(AiohttpSender())
        engine = DeliveryEngine(service.store.path, Clock(service.settings.time_scale), active_sender,
                                per_endpoint=per_endpoint)
        return await engine.run_until_idle(None)
