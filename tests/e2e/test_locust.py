"""Locust distributed (1 master, 2 workers) sends synthetic webhooks to a verifying receiver; the totals add up."""
from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import pipeline
from emitter.receiver import Receiver
from pipeline.synthetic import DIALECT_EVENTS

LOCUSTFILE = Path(pipeline.__file__).parent / "locustfile.py"
SECRETS = {"tectra": "whsec_locust-test", "royal": "whsec_bG9jdXN0LXRlc3Qtc2VjcmV0"}
RUN = ["-u", "4", "-r", "4", "-t", "4s", "--stop-timeout", "5"]
DEADLINE = 45.0
WORKER_LINE = re.compile(r"worker (\S+) sent (\d+) requests")


class ReceiverThread:
    """The project's reference Receiver served from its own event loop in a thread, on 127.0.0.1."""

    def __init__(self, secret: str, dialect: str) -> None:
        self.receiver = Receiver(secret, dialect=dialect)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        """Listen until told to stop."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        await self.receiver.start("127.0.0.1", 0)
        self._ready.set()
        await self._stop.wait()
        await self.receiver.stop()

    def __enter__(self) -> Receiver:
        self._thread.start()
        assert self._ready.wait(10), "receiver did not start"
        return self.receiver

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_locust(args: list[str], log: Path) -> subprocess.Popen:
    """A Locust process on the project's locustfile, its output to a log file."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
                                stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Kill whatever of these processes still runs, and reap them."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait(10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("dialect, mix", [
    ("tectra", None),
    ("royal", "hashed=1,submitted=1,complete=2,nft_added=1"),
])
def test_distributed_locust_totals_match_the_receiver(tmp_path: Path, dialect: str, mix: str | None):
    port, stats = free_port(), tmp_path / "stats"
    with ReceiverThread(SECRETS[dialect], dialect) as receiver:
        master_args = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                       "--headless", "--expect-workers", "2", *RUN, "--host", receiver.url,
                       "--secret", SECRETS[dialect], "--dialect", dialect, "--json-file", str(stats)]
        worker_args = ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        procs = [start_locust(master_args + (["--mix", mix] if mix else []), tmp_path / "master.log")]
        try:
            procs += [start_locust(worker_args, tmp_path / f"worker{i}.log") for i in range(2)]
            try:
                code = procs[0].wait(DEADLINE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"locust master still running after {DEADLINE}s:\n{(tmp_path / 'master.log').read_text()}")
            for worker in procs[1:]:
                try:
                    worker.wait(10)  # workers quit with the master; any still running is killed below
                except subprocess.TimeoutExpired:
                    pass
        finally:
            stop_all(procs)
        received = list(receiver.received)

    master_log = (tmp_path / "master.log").read_text()
    assert code == 0, master_log
    entries = json.loads(stats.with_suffix(".json").read_text())
    total = sum(e["num_requests"] for e in entries)
    assert sum(e["num_failures"] for e in entries) == 0, master_log
    assert total > 100
    assert {e["name"] for e in entries} == set(DIALECT_EVENTS[dialect])
    assert len(received) == total
    assert all(r.verified for r in received)
    per_worker = [int(count) for _, count in WORKER_LINE.findall(master_log)]
    assert len(per_worker) == 2 and min(per_worker) > 0, master_log
    assert sum(per_worker) == total


@pytest.mark.timeout(60)
@pytest.mark.parametrize("options, line", [
    (["--dialect", "royal", "--secret", "whsec_!!", "--mix", "hashed=1"], "locustfile: --secret: a royal webhook secret"),
    (["--secret", "whsec_x", "--mix", "signed=1,minted=2"], "locustfile: --mix: mix item 'minted=2'"),
])
def test_bad_options_stop_locust_with_one_line(tmp_path: Path, options: list[str], line: str):
    log = tmp_path / "locust.log"
    proc = start_locust(["--headless", "-u", "1", "-t", "1s", "--host", "http://127.0.0.1:9/", *options], log)
    try:
        code = proc.wait(DEADLINE)
    finally:
        stop_all([proc])
    lines = [text for text in log.read_text().splitlines() if text.startswith("locustfile:")]
    assert code != 0 and len(lines) == 1 and lines[0].startswith(line), log.read_text()
