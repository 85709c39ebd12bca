"""Load generator: signed webhooks at a constant arrival rate (open loop) or flat out (closed loop), over libcurl."""

import asyncio
import heapq
import itertools
import random
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pycurl
from hdrh.histogram import HdrHistogram

from emitter import dialects, faults
from emitter.faults import FaultPlan
from emitter.loaditem import LoadItem
from emitter.loadreport import LoadReport, Second, distribution, latency_figures

OPEN, MAX = "open", "max"
TICK = 0.25
MAX_LATENCY_US = 60_000_000
MAX_CONNECTIONS = 1000  # libcurl's select() wait sees descriptors below 1024 only
_NO_EXPECT = "Expect:"


@dataclass(frozen=True)
class Target:
    """Where the load goes: the receiver's URL, the endpoint secret and the webhook dialect."""

    url: str
    secret: str
    dialect: str = "tectra"


class _Recorder:
    """Latency histogram (microseconds), status counts, timeouts, errors and the per-second timeline."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.histogram = HdrHistogram(1, MAX_LATENCY_US, 3)
        self.statuses: dict[int, int] = {}
        self.sent = 0
        self.completed = 0
        self.timeouts = 0
        self.errors = 0
        self.timeline: list[Second] = []
        self._second = 0
        self._latencies: list[int] = []
        self._second_errors = 0

    def answered(self, started: float, end: float, status: int) -> None:
        """One request got an HTTP answer at `end`; its latency runs from `started`."""
        latency = int((end - started) * 1_000_000)
        if latency < 1:
            latency = 1
        elif latency > MAX_LATENCY_US:
            latency = MAX_LATENCY_US
        self.histogram.record_value(latency)
        self.completed += 1
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        second = int(end - self.t0)
        if second != self._second:
            self.roll(second)
        self._latencies.append(latency)

    def failed(self, end: float, timed_out: bool) -> None:
        """One request ended at `end` without an answer: a timeout, or a connection error."""
        if timed_out:
            self.timeouts += 1
        else:
            self.errors += 1
        second = int(end - self.t0)
        if second != self._second:
            self.roll(second)
        self._second_errors += 1

    def roll(self, second: int) -> None:
        """Close every timeline second before `second` (empty ones too)."""
        while self._second < second:
            latencies = sorted(self._latencies)
            count = len(latencies)
            if count:
                ms = [latencies[min(count - 1, int(q * count))] / 1000.0 for q in (0.5, 0.9, 0.99)]
                row = Second(self._second, count, self._second_errors, *ms, latencies[-1] / 1000.0)
            else:
                row = Second(self._second, 0, self._second_errors, 0.0, 0.0, 0.0, 0.0)
            self.timeline.append(row)
            self._latencies = []
            self._second_errors = 0
            self._second += 1


class _Engine:
    """One load run over a libcurl multi handle: one easy handle per connection, the schedule, held faults."""

    # Single-threaded and callback-driven: the loop hands due work to free handles, lets libcurl move
    # bytes, and collects answers; a finished request's `done` callback scores it and may queue a
    # follow-up (a dup's second send, a reordered event) ahead of the schedule.

    def __init__(
        self,
        source: Iterable[LoadItem],
        target: Target,
        rate: float | None,
        duration: float,
        connections: int,
        plan: FaultPlan | None,
        progress: Callable[[LoadReport], object] | None,
        seed: int | None,
        timeout: float | None,
    ) -> None:
        _check(target.url, rate, duration, connections, timeout)
        self.dialect = dialects.get(target.dialect)
        self.dialect.check_secret(target.secret)
        self.target = target
        self.source: Iterator[LoadItem] = iter(source)
        self.rate = rate
        self.duration = duration
        self.connections = connections
        self.plan = plan if plan is not None and plan.probabilities else None
        self.progress = progress
        self.rng = random.Random(seed)
        self.scorecard = faults.Scorecard(target.dialect) if self.plan else None
        self.wrong_secret = faults.wrong_secret(self.rng)
        self.prefix = ("msg_" if target.dialect == "royal" else "dlv_") + uuid.uuid4().hex[:12]
        self.ids = itertools.count(1)
        self.timeout_ms = int(1000 * (timeout if timeout is not None else self.dialect.TIMEOUT))
        self.multi: pycurl.CurlMulti | None = None
        self.free: list[pycurl.Curl] = []
        self.in_flight = 0
        self.slots = 0
        self.scheduling = True
        self.extras: deque[Callable[[], None]] = deque()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.timer_ids = itertools.count()
        self.held: dict[str | None, tuple[LoadItem, int]] = {}
        self.holding = 0
        self.events_done = 0
        self.stopped = False
        self.rec = _Recorder(time.perf_counter())
        self.scheduled_end: float | None = None
        self.scheduled_events = 0

    def run(self) -> LoadReport:
        """Send for the duration, wait for every held fault, and report."""
        self.multi = pycurl.CurlMulti()
        self.multi.setopt(pycurl.M_MAXCONNECTS, self.connections)
        handles = [self._handle() for _ in range(self.connections)]
        self.free = list(handles)
        try:
            self._loop()
        finally:
            for handle in handles:
                if handle.multi() is not None:
                    self.multi.remove_handle(handle)
                handle.close()
            self.multi.close()
        self.rec.roll(int(time.perf_counter() - self.rec.t0) + 1)
        return self.report(final=True)

    def report(self, final: bool) -> LoadReport:
        """The figures so far (final: after the run, with the percentile distribution)."""
        rec = self.rec
        now = time.perf_counter()
        end = self.scheduled_end if self.scheduled_end is not None else now
        duration = end - rec.t0
        done = self.scheduled_events if self.scheduled_end is not None else self._events_done()
        return LoadReport(
            mode=OPEN if self.rate is not None else MAX,
            dialect=self.target.dialect,
            target_rate=self.rate,
            achieved_rate=done / duration if duration > 0 else 0.0,
            sent=rec.sent,
            completed=rec.completed,
            in_flight=self.in_flight,
            duration_s=duration,
            elapsed_s=now - rec.t0,
            latency_ms=latency_figures(rec.histogram),
            statuses=dict(rec.statuses),
            timeouts=rec.timeouts,
            connection_errors=rec.errors,
            connections=self.connections,
            timeline=list(rec.timeline),
            distribution=distribution(rec.histogram) if final else [],
            faults=self.plan.spec() if self.plan else None,
            scorecard=self.scorecard.rows() if self.scorecard else None,
            final=final,
        )

    def _handle(self) -> pycurl.Curl:
        """An easy handle for one keep-alive connection to the target: POST, no proxy, the timeout, answers dropped."""
        handle = pycurl.Curl()
        handle.setopt(pycurl.URL, self.target.url)
        handle.setopt(pycurl.POST, 1)
        handle.setopt(pycurl.PROXY, "")
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.TIMEOUT_MS, self.timeout_ms)
        handle.setopt(pycurl.WRITEFUNCTION, len)
        if self.target.url.lower().startswith("https:"):
            # libcurl wheels look for CA certificates where their build system keeps them: use Python's.
            trust = ssl.get_default_verify_paths()
            if trust.cafile:
                handle.setopt(pycurl.CAINFO, trust.cafile)
            if trust.capath:
                handle.setopt(pycurl.CAPATH, trust.capath)
        return handle

    def _loop(self) -> None:
        """Hand out work, let libcurl move bytes, collect answers, tick, wait; until all is sent and answered."""
        multi = self.multi
        rec = self.rec = _Recorder(time.perf_counter())
        next_tick = rec.t0 + TICK
        while not self.stopped:
            now = time.perf_counter()
            if self.timers and self.timers[0][0] <= now:
                self._fire(now)
            if self.free:
                self._fill(now)
            if self.in_flight:
                multi.perform()
                self._collect()
            now = time.perf_counter()
            if now >= next_tick:
                rec.roll(int(now - rec.t0))
                if self.progress is not None:
                    self.progress(self.report(final=False))
                next_tick = now + TICK
            if not self.scheduling and not self.in_flight and not self.extras:
                if self.scheduled_end is None:
                    self.scheduled_end = now
                    self.scheduled_events = self._events_done()
                if not self.holding:
                    return
            wait = self._wait(now, next_tick)
            if wait > 0:
                if self.in_flight:
                    multi.select(wait)
                else:
                    time.sleep(wait)

    def _wait(self, now: float, next_tick: float) -> float:
        """How long the loop may block: until a socket stirs, the next slot, timer or tick, or libcurl's timeout."""
        if self.free and (self.extras or (self.scheduling and self.rate is None)):
            return 0.0
        until = next_tick
        if self.free and self.scheduling:
            until = min(until, self.rec.t0 + self.slots / self.rate)
        if self.timers:
            until = min(until, self.timers[0][0])
        wait = until - now
        if self.in_flight:
            curl_ms = self.multi.timeout()
            if curl_ms >= 0:
                wait = min(wait, curl_ms / 1000.0)
        return wait

    def _fill(self, now: float) -> None:
        """Give free handles queued follow-ups first, then due slots (open loop) or the next events (max)."""
        free = self.free
        extras = self.extras
        source = self.source
        while free:
            if extras:
                extras.popleft()()
                continue
            if not self.scheduling:
                return
            if self.rate is not None:
                offset = self.slots / self.rate
                if offset >= self.duration:
                    self.scheduling = False
                    return
                intended = self.rec.t0 + offset
                if intended > now:
                    return
                self.slots += 1
            else:
                if now - self.rec.t0 >= self.duration:
                    self.scheduling = False
                    return
                intended = None
            item = next(source, None)
            if item is None:
                self.scheduling = False
                return
            if self.plan is None:
                self._send_plain(item, intended)
            elif self._item(item, intended):
                now = time.perf_counter()

    def _send_plain(self, item: LoadItem, started: float | None) -> None:
        """Sign and send one event with no fault: the hot path."""
        event = item.event
        body = self.dialect.render(event)
        rid = f"{self.prefix}{next(self.ids):012x}"
        headers = self.dialect.sign_headers(self.target.secret, event.type, rid, event.timestamp, rid, body, time.time())
        self._post(_lines(headers), body, started, None)

    def _post(
        self, headers: list[str], body: bytes, started: float | None, done: Callable[[int | None], None] | None
    ) -> None:
        """Start one POST on a free handle; `done` gets its status (None: timeout or connection error)."""
        handle = self.free.pop()
        handle.setopt(pycurl.POSTFIELDS, body)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.started = started if started is not None else time.perf_counter()
        handle.done = done
        self.multi.add_handle(handle)
        self.rec.sent += 1
        self.in_flight += 1

    def _collect(self) -> None:
        """Record every finished transfer, free its handle and run its callback."""
        multi = self.multi
        rec = self.rec
        while True:
            queued, finished, failed = multi.info_read()
            for handle in finished:
                end = time.perf_counter()
                multi.remove_handle(handle)
                status = handle.getinfo(pycurl.RESPONSE_CODE)
                rec.answered(handle.started, end, status)
                self._finished(handle, status)
            for handle, code, _ in failed:
                end = time.perf_counter()
                multi.remove_handle(handle)
                rec.failed(end, timed_out=code == pycurl.E_OPERATION_TIMEDOUT)
                self._finished(handle, None)
            if not queued:
                return

    def _finished(self, handle: pycurl.Curl, status: int | None) -> None:
        """Return a handle to the pool and hand its status to its callback."""
        self.free.append(handle)
        self.in_flight -= 1
        done = handle.done
        if done is not None:
            handle.done = None
            done(status)

    def _events_done(self) -> int:
        """Events answered so far, plus those held back as faults."""
        return self.events_done if self.plan is not None else self.rec.completed

    def _item(self, item: LoadItem, started: float | None) -> bool:
        """Send one item with its drawn fault, or hold it back (delay, reorder); True if it was held."""
        kind = self.plan.pick(self.rng)
        if kind == faults.DELAY:
            self._hold()
            self._after(self.plan.delay_hold, lambda: self._delay_over(item))
            return True
        waiting = self._held_before(item) if self.held else None
        if kind == faults.REORDER and waiting is None:
            self._hold()
            token = next(self.timer_ids)
            self.held[item.group] = (item, token)
            self._after(self.plan.reorder_window, lambda: self._window_closed(item.group, token))
            return True
        if kind == faults.REORDER:
            kind = faults.HONEST  # it overtakes an event held back already: one swap at a time
        follow = None if waiting is None else (lambda: self._send_reordered(waiting[0], reordered=True))
        self._send(kind, item, started, follow)
        return False

    def _held_before(self, item: LoadItem) -> tuple[LoadItem, int] | None:
        """Take the event held back in the item's group, or in a group it follows; None if there is none."""
        for group in (item.group, *item.follows):
            if group in self.held:
                return self.held.pop(group)
        return None

    def _send(
        self, kind: str, item: LoadItem, started: float | None, follow: Callable[[], None] | None = None
    ) -> None:
        """Build, sign and post one request of `kind`; score its answer, then queue `follow` if given."""
        event = item.event
        now = time.time()
        signed_at = now
        secret = self.target.secret
        if kind == faults.STALE and self.target.dialect == "royal":
            signed_at = now - faults.STALE_AGE
        elif kind == faults.STALE:
            event = faults.stale_event(event, now)
        elif kind == faults.BADSIG:
            secret = self.wrong_secret
        body = self.dialect.render(event)
        if kind == faults.MALFORMED:
            body = faults.malformed(body)
        rid = f"{self.prefix}{next(self.ids):012x}"
        headers = self.dialect.sign_headers(secret, event.type, rid, event.timestamp, rid, body, signed_at)
        lines = _lines(headers)

        def done(status: int | None) -> None:
            """Score the answer (a dup first sends its copy), count the event, queue the follow-up."""
            if kind == faults.DUP:
                self.extras.appendleft(lambda: self._post(lines, body, None, lambda again: dup_done(status, again)))
                return
            self.scorecard.record(kind, status)
            self._event_answered(kind, status, follow)

        def dup_done(first: int | None, again: int | None) -> None:
            """Score a delivery sent twice."""
            self.scorecard.record_dup(first, again)
            self._event_answered(kind, first, follow)

        self._post(lines, body, started, done)

    def _event_answered(self, kind: str, status: int | None, follow: Callable[[], None] | None) -> None:
        """Count a scheduled event answered (a held one was counted when held) and queue its follow-up."""
        if kind == faults.DELAY:
            self._release()
        elif status is not None:
            self.events_done += 1
        if follow is not None:
            self.extras.appendleft(follow)

    def _send_reordered(self, item: LoadItem, reordered: bool) -> None:
        """Send a held event, validly signed now, and score it as reorder."""
        event = item.event
        body = self.dialect.render(event)
        rid = f"{self.prefix}{next(self.ids):012x}"
        headers = self.dialect.sign_headers(self.target.secret, event.type, rid, event.timestamp, rid, body, time.time())

        def done(status: int | None) -> None:
            """Score the held event and count it as released."""
            self.scorecard.record_reorder(status, reordered)
            self._release()

        self._post(_lines(headers), body, None, done)

    def _delay_over(self, item: LoadItem) -> None:
        """A delayed event's hold time is over: queue it."""
        self.extras.append(lambda: self._send(faults.DELAY, item, None))

    def _window_closed(self, group: str | None, token: int) -> None:
        """No later event of the group came in time: queue the held one as it is."""
        waiting = self.held.get(group)
        if waiting is not None and waiting[1] == token:
            del self.held[group]
            self.extras.append(lambda: self._send_reordered(waiting[0], reordered=False))

    def _hold(self) -> None:
        """Count an event held back (it counts as done for the schedule)."""
        self.holding += 1
        self.events_done += 1

    def _release(self) -> None:
        """Count a held event as sent and answered."""
        self.holding -= 1

    def _after(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run `callback` from the loop once `seconds` have passed."""
        heapq.heappush(self.timers, (time.perf_counter() + seconds, next(self.timer_ids), callback))

    def _fire(self, now: float) -> None:
        """Run every timer that is due."""
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()


def _lines(headers: dict[str, str]) -> list[str]:
    """Headers as libcurl takes them, with its automatic "Expect: 100-continue" switched off."""
    return [f"{name}: {value}" for name, value in headers.items()] + [_NO_EXPECT]


def _check(url: str, rate: float | None, duration: float, connections: int, timeout: float | None) -> None:
    """ValueError, in one line, for a setting a run cannot use."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"target URL {url!r} is not an http(s) URL with a host")
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be above 0 events/s, got {rate}")
    if not duration > 0:
        raise ValueError(f"duration must be above 0 seconds, got {duration}")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be from 1 to {MAX_CONNECTIONS}, got {connections}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be above 0 seconds, got {timeout}")


def run(
    source: Iterable[LoadItem],
    target: Target,
    rate: float | None,
    duration: float,
    connections: int = 64,
    fault_plan: FaultPlan | None = None,
    progress: Callable[[LoadReport], object] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> LoadReport:
    """Load `target` from `source`: open loop at `rate` events/s, or closed loop flat out when rate is None."""
    return _Engine(source, target, rate, duration, connections, fault_plan, progress, seed, timeout).run()


async def run_load(
    source: Iterable[LoadItem],
    target: Target,
    rate: float | None,
    duration: float,
    connections: int = 64,
    fault_plan: FaultPlan | None = None,
    progress: Callable[[LoadReport], object] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> LoadReport:
    """run() in a worker thread (progress is called there), so this event loop keeps going; cancelling stops it."""
    engine = _Engine(source, target, rate, duration, connections, fault_plan, progress, seed, timeout)
    worker = asyncio.ensure_future(asyncio.to_thread(engine.run))
    try:
        return await asyncio.shield(worker)
    except asyncio.CancelledError:
        engine.stopped = True
        await asyncio.gather(worker, return_exceptions=True)
        raise
