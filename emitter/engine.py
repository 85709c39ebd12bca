"""Delivery engine: drains the outbox concurrently, signs per attempt, logs attempts and schedules retries."""

import asyncio
import math
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from typing import Callable, TypeVar

from emitter import claims, dialects, outbox
from emitter.claims import Claim, Outcome
from emitter.clock import Clock
from emitter.sender import SendResult, Sender

T = TypeVar("T")

_FLUSH_BATCH = 1024  # outcomes waiting in memory that force a write at once
_LANE_DEPTH = 4  # claimed deliveries held per endpoint, in multiples of per_endpoint
_FLUSH_INTERVAL = 0.05  # real seconds a finished attempt may wait before its row is written
_POLL = 1.0  # real seconds between scans for due rows when nobody calls notify()


@dataclass
class _Lane:
    """The claimed, not yet sent deliveries of one endpoint and the workers sending them."""

    queue: deque[Claim] = field(default_factory=deque)
    workers: int = 0
    more: bool = False


class DeliveryEngine:
    """Sends outbox deliveries: at most `concurrency` requests at once, `per_endpoint` per endpoint."""

    # Each run opens its own connection on a private database thread and closes it when it ends.
    # One engine per outbox database at a time: each run first puts rows left 'delivering' back to 'pending'.

    def __init__(
        self,
        db_path: "str | PathLike[str]",
        clock: Clock,
        sender: Sender,
        concurrency: int = 64,
        per_endpoint: int = 16,
    ) -> None:
        if concurrency < 1 or per_endpoint < 1:
            raise ValueError(f"concurrency and per_endpoint must be >= 1, got {concurrency} and {per_endpoint}")
        self._clock = clock
        self._sender = sender
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._lane_depth = _LANE_DEPTH * per_endpoint
        self._db_path = db_path
        self._db_thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._send_slots = asyncio.Semaphore(concurrency)
        self._notified = False
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task] = set()
        self._results: list[Outcome] = []
        self._first_result_at = 0.0
        self._held = 0
        self._next_due = math.inf

    def notify(self) -> None:
        """Tell a running engine that new rows were committed; safe to call from any thread."""
        self._notified = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_until_idle(self, producer_done: asyncio.Event | None = None) -> dict[str, int]:
        """Deliver until producer_done is set (None: now) and nothing is pending (retries too); returns summary()."""
        if self._loop is not None:
            raise RuntimeError("this DeliveryEngine is already running: call run_until_idle once at a time")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._send_slots = asyncio.Semaphore(self._concurrency)
        self._next_due = math.inf
        done_watch = None
        if producer_done is not None:
            done_watch = asyncio.ensure_future(producer_done.wait())
            done_watch.add_done_callback(lambda _: self._wake.set())
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wh-outbox")
        try:
            await self._db(self._open)
            await self._drive(producer_done)
            return await self._db(outbox.summary, self._conn)
        finally:
            if done_watch is not None:
                done_watch.cancel()
            try:
                await self._stop_workers()
            finally:
                self._db_thread.shutdown()
                self._loop = None

    def _open(self) -> None:
        """On the database thread: connect, make sure the schema exists, and recover rows left 'delivering'."""
        self._conn = outbox.connect(self._db_path)
        outbox.init_schema(self._conn)
        self._settle([])

    async def _drive(self, producer_done: asyncio.Event | None) -> None:
        """The main loop: flush outcomes, refill lanes, discover due rows, wait; return once idle."""
        last_scan = -math.inf
        while True:
            self._wake.clear()
            now = self._clock.now()
            done = producer_done is None or producer_done.is_set()
            idle = self._held == 0 and not self._results
            scan = (
                self._notified
                or now >= self._next_due
                or self._monotonic() - last_scan >= _POLL
                or (done and idle)
            )
            refill = {
                ep: self._lane_depth - len(lane.queue)
                for ep, lane in self._lanes.items()
                if lane.more and len(lane.queue) < self._per_endpoint
            }
            flush = bool(self._results) and (
                len(self._results) >= _FLUSH_BATCH
                or self._monotonic() - self._first_result_at >= _FLUSH_INTERVAL
                or self._held == 0
            )
            if scan or refill or flush:
                if scan:
                    self._notified = False
                    self._next_due = math.inf
                    last_scan = self._monotonic()
                outcomes, self._results = self._results, []
                room = {ep: self._lane_depth - len(lane.queue) for ep, lane in self._lanes.items()}
                claimed, lanes_seen, next_due = await self._db(
                    self._round, outcomes, refill, room if scan else None, now
                )
                self._next_due = min(self._next_due, next_due)
                for endpoint_id, batch, next_at in claimed:
                    self._add(endpoint_id, batch, next_at, now)
                if scan and done and idle and not lanes_seen:
                    return
                self._drop_idle_lanes()
            if done and self._held == 0 and not self._results and not (scan and idle):
                continue  # everything sent and written: look once more for work before sleeping
            await self._wait(self._deadline(last_scan))

    @staticmethod
    def _monotonic() -> float:
        """Loop time for the engine's own housekeeping (flush and poll intervals), never scaled."""
        return asyncio.get_running_loop().time()

    def _deadline(self, last_scan: float) -> float:
        """Seconds until the loop must run again without being woken."""
        real_now = self._monotonic()
        waits = [last_scan + _POLL - real_now, self._next_due - self._clock.now()]
        if self._results:
            waits.append(self._first_result_at + _FLUSH_INTERVAL - real_now)
        return max(0.0, min(waits))

    async def _wait(self, timeout: float) -> None:
        """Sleep until woken or `timeout` seconds pass."""
        if self._wake.is_set():
            return
        timer = asyncio.get_running_loop().call_later(timeout, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _round(
        self,
        outcomes: list[Outcome],
        refill: dict[str, int],
        room: dict[str, int] | None,
        now: float,
    ) -> tuple[list[tuple[str, list[Claim], float | None]], bool, float]:
        """One transaction on the database thread: record outcomes, claim due rows; see the comment below."""
        # With `room` (a scan) every endpoint with pending rows is considered, else only `refill`.
        # Returns the claims per endpoint, whether the scan saw any pending row, and the earliest
        # not yet due time the scan saw (inf if none).
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if outcomes:
                claims.record(conn, outcomes)
            wanted = dict(refill)
            lanes_seen = False
            next_due = math.inf
            if room is not None:
                for endpoint_id, first_at in claims.pending_lanes(conn):
                    lanes_seen = True
                    if first_at <= now:
                        wanted.setdefault(endpoint_id, room.get(endpoint_id, self._lane_depth))
                    else:
                        next_due = min(next_due, first_at)
            claimed = [
                (endpoint_id, *claims.claim(conn, endpoint_id, now, max(limit, 0)))
                for endpoint_id, limit in wanted.items()
            ]
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return claimed, lanes_seen, next_due

    def _add(self, endpoint_id: str, batch: list[Claim], next_at: float | None, now: float) -> None:
        """Queue freshly claimed deliveries on their endpoint's lane and start workers as allowed."""
        lane = self._lanes.setdefault(endpoint_id, _Lane())
        lane.queue.extend(batch)
        self._held += len(batch)
        lane.more = next_at is not None and next_at <= now
        if next_at is not None and next_at > now:
            self._next_due = min(self._next_due, next_at)
        for _ in range(min(self._per_endpoint - lane.workers, len(lane.queue))):
            lane.workers += 1
            task = asyncio.ensure_future(self._work(lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _drop_idle_lanes(self) -> None:
        """Forget lanes with nothing queued, nobody sending and nothing more due."""
        for endpoint_id in [ep for ep, lane in self._lanes.items() if not (lane.queue or lane.workers or lane.more)]:
            del self._lanes[endpoint_id]

    async def _work(self, lane: _Lane) -> None:
        """Send the lane's queued deliveries one after another until the queue is empty."""
        try:
            while lane.queue:
                job = lane.queue.popleft()
                if lane.more and len(lane.queue) < self._per_endpoint:
                    self._wake.set()
                async with self._send_slots:
                    at = self._clock.now()
                    result = await self._attempt(job, at)
                self._record(job, at, result)
        finally:
            lane.workers -= 1
            if not lane.workers:
                self._wake.set()

    async def _attempt(self, job: Claim, at: float) -> SendResult:
        """Sign this attempt with the dialect and the valid secrets, and send it; failures become SendResults."""
        try:
            dialect = dialects.get(job.dialect)
            headers = dialect.sign_headers(
                job.signing_secrets(at), job.event_type, job.event_id, job.event_timestamp, job.delivery_id,
                job.body, at,
            )
            return await self._sender.send(job.url, headers, job.body, dialect.TIMEOUT)
        except Exception as exc:  # a broken sender or dialect must fail the attempt, not the engine
            return SendResult(None, f"{type(exc).__name__}: {exc}", (self._clock.now() - at) * 1000.0)

    def _record(self, job: Claim, at: float, result: SendResult) -> None:
        """Turn an attempt's result into an Outcome: delivered, retry later, or failed."""
        now = self._clock.now()
        next_at = delivered_at = None
        if result.ok:
            status, delivered_at = "delivered", now
        elif job.attempt < job.max_attempts:
            schedule = dialects.get(job.dialect).RETRY_SCHEDULE
            delay = schedule[min(job.attempt, len(schedule) - 1)]
            status, next_at = "pending", now + self._clock.scaled(delay)
            self._next_due = min(self._next_due, next_at)
        else:
            status = "failed"
        if not self._results:
            self._first_result_at = self._monotonic()
            self._wake.set()
        self._results.append(
            Outcome(
                job.delivery_id, job.attempt, at, result.status, result.error, result.duration_ms,
                status, next_at, delivered_at,
            )
        )
        self._held -= 1
        if len(self._results) >= _FLUSH_BATCH:
            self._wake.set()

    async def _stop_workers(self) -> None:
        """Cancel workers, write the outcomes already known, and put unsent claims back to 'pending'."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        outcomes, self._results = self._results, []
        self._lanes.clear()
        self._held = 0
        self._db_thread.submit(self._close, outcomes).result()

    def _close(self, outcomes: list[Outcome]) -> None:
        """On the database thread: settle what this run leaves behind and close the connection."""
        if self._conn is not None:
            try:
                self._settle(outcomes)  # if this write fails, the next run's recovery puts the rows back
            finally:
                self._conn.close()
                self._conn = None

    def _settle(self, outcomes: list[Outcome]) -> None:
        """On the database thread: record outcomes, then put every 'delivering' row back to 'pending'."""
        with self._conn:
            if outcomes:
                claims.record(self._conn, outcomes)
            claims.recover(self._conn)

    async def _db(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the engine's database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)
