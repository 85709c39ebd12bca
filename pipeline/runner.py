"""One run of the pipeline: ingest, fingerprint, sign, batch, anchor and deliver, concurrently."""
from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from emitter.clock import Clock
from emitter.engine import DeliveryEngine
from emitter.sender import AiohttpSender, Sender

from .analyze import Analysis, analyze_file
from .batcher import Batcher
from .digest import IngestError
from .fingerprint import fingerprint
from .ingest import SourceItem, expand_sources, fetch, make_client
from .records import Batch, Record
from .service import Service


@dataclass
class RunReport:
    """What a run did: items accepted or refused, batches anchored, deliveries made."""

    items: int = 0
    registered: list[Record] = field(default_factory=list)
    known: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    anchor_errors: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    deliveries: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 all good; bit 1: deliveries failed or batches not anchored; bit 2: inputs refused."""
        code = 0
        if self.deliveries.get("failed") or self.anchor_errors:
            code |= 1
        if self.errors:
            code |= 2
        return code


def make_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes for the CPU-bound hashing and perceptual hashing."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.analyze"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


async def run_pipeline(
    service: Service,
    sources: Sequence[str],
    *,
    origin_type: str | None = None,
    context: dict | None = None,
    sender: Sender | None = None,
    on_item: Callable[[str, str], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> RunReport:
    """Run every source through the pipeline and deliver every event it caused."""
    settings = service.settings
    report = RunReport()
    loop = asyncio.get_running_loop()
    _ = service.chain  # open the chain and deploy the registry before the first batch
    anchor_queue: asyncio.Queue[Batch | None] = asyncio.Queue()

    def close(ids: list[str]) -> None:
        anchor_queue.put_nowait(service.close_batch(ids))

    batcher = Batcher(settings.batch_size, settings.batch_interval, close)
    for batch in service.store.batches(status="closed"):
        anchor_queue.put_nowait(batch)  # closed before a crash, never anchored
    for record_id in service.store.unbatched_record_ids():
        batcher.add(record_id)  # accepted before a crash, never batched

    items = list(expand_sources(sources))
    report.items = len(items)
    if on_total:
        on_total(len(items))

    async with _sender_or(sender) as active_sender:
        engine = DeliveryEngine(service.store.path, Clock(settings.time_scale), active_sender)
        producer_done = asyncio.Event()
        engine_task = asyncio.create_task(engine.run_until_idle(producer_done))

        async def anchorer() -> None:
            while (batch := await anchor_queue.get()) is not None:
                try:
                    anchored, event_id = service.anchor_batch(batch)
                except Exception as exc:  # one bad batch must not stop the others
                    report.anchor_errors.append(f"batch {batch.id}: {exc}")
                    continue
                report.batches.append(anchored)
                report.event_ids.append(event_id)
                engine.notify()

        anchor_task = asyncio.create_task(anchorer())
        limit = asyncio.Semaphore(settings.workers * 2)
        with make_pool(settings.workers) as pool:
            async with make_client() as client:
                download_dir = settings.data_dir / "downloads"

                async def one(item: SourceItem | IngestError) -> None:
                    async with limit:
                        try:
                            if isinstance(item, IngestError):
                                raise item
                            analysis, path = await _analyse(item, pool, client, download_dir, settings.caps, loop)
                            rec, event_id = service.register(
                                analysis, item.location, Path(item.display_name).name, origin_type, context
                            )
                        except IngestError as exc:
                            report.errors.append(str(exc))
                            if on_item:
                                on_item("error", str(exc))
                            return
                        except Exception as exc:  # bad input must never take the run down
                            message = f"{getattr(item, 'location', item)}: {type(exc).__name__}: {exc}"
                            report.errors.append(message)
                            if on_item:
                                on_item("error", message)
                            return
                    if event_id is None:
                        report.known.append(rec)
                        if on_item:
                            on_item("known", rec.original_filename)
                        return
                    report.registered.append(rec)
                    report.event_ids.append(event_id)
                    batcher.add(rec.id)
                    engine.notify()
                    if on_item:
                        on_item("registered", rec.original_filename)

                await asyncio.gather(*(one(item) for item in items))
        batcher.flush()  # the input has ended: no later leaf can join the open batch
        anchor_queue.put_nowait(None)
        await anchor_task
        producer_done.set()
        report.deliveries = await engine_task
    return report


async def deliver_outbox(service: Service, sender: Sender | None = None) -> dict:
    """Deliver everything waiting in the outbox (retries included); returns the delivery counts."""
    async with _sender_or(sender) as active_sender:
        engine = DeliveryEngine(service.store.path, Clock(service.settings.time_scale), active_sender)
        done = asyncio.Event()
        done.set()
        return await engine.run_until_idle(done)


async def _analyse(item: SourceItem, pool, client, download_dir: Path, caps, loop) -> tuple[Analysis, Path]:
    """Hash and fingerprint one item off the event loop; URLs are hashed while they stream."""
    if item.kind == "url":
        download_dir.mkdir(parents=True, exist_ok=True)
        path, digest = await fetch(item, download_dir, client, caps)
        fp = await loop.run_in_executor(pool, fingerprint, str(path))
        return Analysis(digest=digest, fingerprint=fp), path
    analysis = await loop.run_in_executor(pool, analyze_file, item.location, caps.image, caps.other)
    return analysis, Path(item.location)


class _sender_or:
    """Use the given sender, or open (and close) an aiohttp one for this run."""

    def __init__(self, sender: Sender | None):
        self._given = sender
        self._own: AiohttpSender | None = None

    async def __aenter__(self) -> Sender:
        if self._given is not None:
            return self._given
        self._own = AiohttpSender()
        return await self._own.__aenter__()

    async def __aexit__(self, *exc) -> None:
        if self._own is not None:
            await self._own.__aexit__(*exc)
