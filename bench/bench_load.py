"""Benchmark: the load generator's signed events/s on one core against wrk's request rate, same loopback receiver."""

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

from emitter import loadgen
from emitter.dialects import tectra
from emitter.endpoint import new_secret
from emitter.loaditem import LoadItem
from emitter.loadgen import Target
from pipeline.synthetic import events

GOAL = 0.5
ANSWER = b'{"received":true}'
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "{agent}"
wrk.headers["X-Tectra-Signature"] = "{signature}"
wrk.headers["X-Tectra-Event"] = "{event}"
wrk.headers["X-Tectra-Delivery"] = "dlv_wrk"
wrk.headers["X-Tectra-Timestamp"] = "{timestamp}"
"""


def _serve(workers: int) -> None:
    """Answer every POST 200 after reading its body, in `workers` processes sharing one socket; print the port."""

    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def serve(listener: socket.socket) -> None:
        await asyncio.get_running_loop().create_server(web.Server(handler, access_log=None), sock=listener)
        await asyncio.Event().wait()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    print(listener.getsockname()[1], flush=True)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    uvloop.run(serve(listener))


def _cores() -> tuple[int, set[int]]:
    """The core the clients run on and the cores left to the receiver (the same one on a single-core machine)."""
    cores = sorted(os.sched_getaffinity(0))
    client = cores[0]
    return client, set(cores[1:]) or {client}


def _start_receiver(cores: set[int], workers: int) -> tuple[subprocess.Popen, str]:
    """Run the receiver pinned to `cores`; returns the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(workers)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
        start_new_session=True,
    )
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/hooks"


def _stop_receiver(proc: subprocess.Popen) -> None:
    """Stop the receiver and the workers it forked (its own process group)."""
    os.killpg(proc.pid, 15)
    proc.wait()


def _wrk(wrk: str, url: str, core: int, connections: int, seconds: float, sample: LoadItem) -> tuple[float, float]:
    """wrk's requests/s with one thread on `core`, POSTing one fixed signed Tectra body, and its CPU seconds."""
    event = sample.event
    body = tectra.render(event)
    literal = json.dumps(body.decode("utf-8"), ensure_ascii=False)
    script = WRK_SCRIPT.format(
        body=literal, agent=tectra.USER_AGENT, signature=tectra.sign("whsec_bench", body),
        event=event.type, timestamp=event.timestamp,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        cpu = _child_cpu()
        env = {**os.environ, "LD_LIBRARY_PATH": str(Path(wrk).resolve().parents[1] / "lib/x86_64-linux-gnu")}
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", lua.name, url],
            capture_output=True, text=True, env=env, preexec_fn=lambda: os.sched_setaffinity(0, {core}), check=True,
        ).stdout
    cpu = _child_cpu() - cpu
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"wrk printed no Requests/sec: {out.strip()}")
    return float(match.group(1)), cpu


def _child_cpu() -> float:
    """CPU seconds used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(measure) -> tuple[float, float]:
    """Run an in-process measurement; its rate and the CPU seconds this process spent on it."""
    cpu = time.process_time()
    rate = measure()
    return rate, time.process_time() - cpu


def _generator(url: str, dialect: str, items: list[LoadItem], connections: int, seconds: float) -> float:
    """The load generator's answered events/s in max mode with fresh signatures (runs on the current core)."""
    secret = new_secret()
    report = loadgen.run(itertools.cycle(items), Target(url, secret, dialect), None, seconds, connections)
    if report.ok != report.completed or report.timeouts or report.connection_errors:
        raise SystemExit(f"generator ({dialect}): not every request was answered 2xx: {report.statuses}")
    return report.achieved_rate


async def _bare(url: str, items: list[LoadItem], connections: int, seconds: float) -> float:
    """A plain aiohttp sender's requests/s: back to back, a fresh HMAC per request, nothing recorded."""
    bodies = [tectra.render(item.event) for item in items[:1000]]
    done = 0

    async def worker(session: aiohttp.ClientSession, end: float) -> None:
        nonlocal done
        for body in itertools.cycle(bodies):
            if time.perf_counter() >= end:
                return
            signature = hmac.new(b"whsec_bench", body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", tectra.SIGNATURE_HEADER: signature}
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            done += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, started + seconds) for _ in range(connections)))
        return done / (time.perf_counter() - started)


def main() -> None:
    """Parse arguments, measure wrk, the generator (tectra, royal) and bare senders in rounds; print the best."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement; best kept (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="connections for every client (default 32)")
    parser.add_argument("--events", type=int, default=20000, help="synthetic events drawn up front (default 20000)")
    parser.add_argument("--workers", type=int, help="receiver processes (default: one per core left to it)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    wrk = os.environ.get("WRK", "build/wrk/usr/bin/wrk")
    if not Path(wrk).exists():
        raise SystemExit(f"wrk not found at {wrk}: run `make wrk` or set WRK")
    pools = {name: list(itertools.islice(events(name, mix=None, seed=0), args.events)) for name in ("tectra", "royal")}
    client, server_cores = _cores()
    workers = args.workers or len(server_cores)
    sample = pools["tectra"][0]
    seconds, connections = args.seconds, args.connections
    clients = {
        "wrk, 1 thread, fixed body": lambda: _wrk(wrk, url, client, connections, seconds, sample),
        "generator, max mode, signed tectra": lambda: _generator(url, "tectra", pools["tectra"], connections, seconds),
        "generator, max mode, signed royal": lambda: _generator(url, "royal", pools["royal"], connections, seconds),
        "bare aiohttp, fresh HMAC": lambda: asyncio.run(_bare(url, pools["tectra"], connections, seconds)),
        "bare aiohttp + uvloop, fresh HMAC": lambda: uvloop.run(_bare(url, pools["tectra"], connections, seconds)),
    }
    best = dict.fromkeys(clients, (0.0, 0.0))
    proc, url = _start_receiver(server_cores, workers)
    try:
        os.sched_setaffinity(0, {client})
        for _ in range(args.rounds):
            for name, measure in clients.items():
                best[name] = max(best[name], measure() if name.startswith("wrk") else _timed(measure))
    finally:
        _stop_receiver(proc)
    print(
        f"bench_load: best of {args.rounds} x {seconds:g}s, {connections} connections, clients on core {client},"
        f" receiver ({workers} aiohttp+uvloop process{'es' if workers > 1 else ''}) on {sorted(server_cores)}"
    )
    print(f"events drawn up front from pipeline.synthetic ({args.events} per dialect, cycled), signed per request")
    wrk_rate = best["wrk, 1 thread, fixed body"][0]
    print(f"{'client':<40}{'per second':>12}{'/ wrk':>8}{'client core busy':>18}")
    for name, (rate, cpu) in best.items():
        print(f"{name:<40}{rate:>12,.0f}{rate / wrk_rate:>8.2f}{cpu / seconds:>18.0%}")
    print("(a client core under 100% busy means the receiver, not the client, set the rate)")
    worst = min(rate for name, (rate, _) in best.items() if name.startswith("generator")) / wrk_rate
    verdict = "met" if worst >= GOAL else "NOT met"
    print(f"goal: generator >= {GOAL:.2f} of wrk on one core: {verdict} ({worst:.2f})")


if __name__ == "__main__":
    main()
