"""Benchmark: DeliveryEngine draining a SQLite outbox vs a bare aiohttp sender, against one fast loopback receiver."""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from emitter import outbox
from emitter.clock import Clock
from emitter.dialects import tectra
from emitter.endpoint import Endpoint
from emitter.engine import DeliveryEngine
from emitter.event import Event
from emitter.sender import AiohttpSender

GOAL = 2000.0
ANSWER = b'{"received":true}'


async def _serve_fast(port: int) -> None:
    """Answer every request 200 after reading its body; print the bound port, then serve forever."""

    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    server = await asyncio.get_running_loop().create_server(web.Server(handler, access_log=None), "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def _start_receiver() -> tuple[subprocess.Popen, str]:
    """Run the fast receiver in its own process; returns the process and its URL."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/hooks"


def _events(n: int) -> list[Event]:
    """N events shaped like content.signed payloads."""
    return [
        Event.new(
            "content.signed",
            {"record_id": f"00000000-0000-4000-8000-{i:012d}", "sha256": "ab" * 32, "blockchain_status": "pending"},
        )
        for i in range(n)
    ]


async def _bench_engine(db_path: Path, url: str, events: list[Event], concurrency: int, per_endpoint: int) -> dict:
    """Enqueue every event in one transaction, then time a DeliveryEngine draining the outbox."""
    endpoint = Endpoint.new(url)
    conn = outbox.connect(db_path)
    outbox.init_schema(conn)
    started = time.perf_counter()
    with conn:
        for event in events:
            outbox.enqueue(conn, event, [endpoint])
    enqueue_s = time.perf_counter() - started
    conn.close()
    async with AiohttpSender(limit=concurrency) as sender:
        engine = DeliveryEngine(db_path, Clock(), sender, concurrency=concurrency, per_endpoint=per_endpoint)
        started = time.perf_counter()
        summary = await engine.run_until_idle()
        drain_s = time.perf_counter() - started
    if summary["delivered"] != len(events):
        raise SystemExit(f"engine delivered {summary['delivered']} of {len(events)}: {summary}")
    return {"enqueue_s": enqueue_s, "drain_s": drain_s}


async def _bench_bare(url: str, events: list[Event], concurrency: int) -> float:
    """Time plain aiohttp POSTs of the same bodies (pre-signed) with `concurrency` workers."""
    requests = [
        (body, tectra.headers("whsec_bench", e.type, f"dlv_{i}", e.timestamp, body))
        for i, e in enumerate(events)
        for body in [tectra.render(e)]
    ]
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while requests:
            body, headers = requests.pop()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                failures += response.status != 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"bare sender: {failures} requests were not answered 200")
    return elapsed


def main() -> None:
    """Parse arguments, run both measurements against one receiver process, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--events", type=int, default=20000, help="deliveries to send (default 20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--per-endpoint", type=int, help="engine per-endpoint limit (default: --concurrency)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve_fast(0))
        return
    per_endpoint = args.per_endpoint or args.concurrency
    events = _events(args.events)
    proc, url = _start_receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = asyncio.run(_bench_engine(Path(tmp) / "outbox.db", url, events, args.concurrency, per_endpoint))
        bare_s = asyncio.run(_bench_bare(url, events, args.concurrency))
    finally:
        proc.terminate()
        proc.wait()
    n = args.events
    engine_rate, bare_rate = n / engine["drain_s"], n / bare_s
    print(
        f"bench_outbox: {n} deliveries to 1 endpoint, concurrency {args.concurrency}"
        f" (per endpoint {per_endpoint}), receiver in a separate process on 127.0.0.1"
    )
    print(f"{'step':<34}{'seconds':>9}{'per second':>13}")
    print(f"{'enqueue (one transaction)':<34}{engine['enqueue_s']:>9.2f}{n / engine['enqueue_s']:>13,.0f}")
    print(f"{'DeliveryEngine drain':<34}{engine['drain_s']:>9.2f}{engine_rate:>13,.0f}")
    print(f"{'bare aiohttp sender':<34}{bare_s:>9.2f}{bare_rate:>13,.0f}")
    print(f"{'engine / bare':<34}{'':>9}{engine_rate / bare_rate:>13.2f}")
    verdict = "met" if engine_rate >= GOAL else "NOT met"
    print(f"goal: DeliveryEngine >= {GOAL:,.0f}/s: {verdict} ({engine_rate:,.0f}/s)")


if __name__ == "__main__":
    main()
