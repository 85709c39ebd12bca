"""run_server in its own process: a crash loses nothing accepted, SIGTERM closes and anchors the open batch."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import TIMEOUT, image_bytes, make_keys, server_settings

from pipeline.service import Service

SERVE = """
import sys
from pathlib import Path
from pipeline.api import run_server
from pipeline.ingest import Caps
from pipeline.settings import Settings
run_server(Settings(data_dir=Path(sys.argv[1]), batch_size=100, batch_interval=600.0, workers=1,
                    caps=Caps(image=256 * 1024, other=256 * 1024)), port=int(sys.argv[2]))
"""


class ServerProcess:
    """`run_server` in a subprocess on a free 127.0.0.1 port, its output in a log file."""

    def __init__(self, data_dir: Path, log: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-c", SERVE, str(data_dir), str(self.port)],
                                            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while not self._answers():
            assert self.process.poll() is None, f"server exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"server did not answer in time:\n{log.read_text()}"
            time.sleep(0.1)

    def _answers(self) -> bool:
        """Whether the server serves its OpenAPI document yet."""
        try:
            return httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def end(self, sig: int) -> tuple[int, list[int]]:
        """Signal the server, wait (bounded) for it to exit; returns its status and the helpers it left alive.

        The helpers (the analysis pool's forkserver and workers, the resource tracker) that outlive it
        are killed here, one by one, so a test never leaves processes behind.
        """
        helpers = _descendants(self.process.pid)
        self.process.send_signal(sig)
        try:
            status = self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(TIMEOUT)
            raise AssertionError(f"server did not exit after signal {sig}:\n{self.log.read_text()}") from None
        deadline = time.monotonic() + (5.0 if sig != signal.SIGKILL else 0.0)  # a clean exit ends its helpers
        while any(_alive(pid) for pid in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in helpers if _alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        return status, left


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` now, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _alive(pid: int) -> bool:
    """Whether a process exists and has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def servers():
    """Start ServerProcess instances; any still running when the test ends are killed with their helpers."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, log: Path) -> ServerProcess:
        """Start one and remember it."""
        started.append(ServerProcess(data_dir, log))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.end(signal.SIGKILL)


def _upload(server: ServerProcess, key: str, seed: int) -> str:
    """Register one image; returns its record id."""
    response = httpx.post(server.url + "/api/v1/content", headers={"Authorization": f"Bearer {key}"},
                          files={"file": (f"s{seed}.jpg", image_bytes(seed), "image/jpeg")}, timeout=TIMEOUT)
    assert response.status_code == 202, response.text
    return response.json()["record_id"]


def test_a_killed_server_resumes_and_sigterm_anchors_the_open_batch(tmp_path, servers):
    data_dir = tmp_path / "state"
    key = make_keys(server_settings(data_dir), "acme")["acme"]
    log = tmp_path / "server.log"

    first = servers(data_dir, log)
    crashed_id = _upload(first, key, 801)  # its batch stays open: 100 leaves or 600 s
    assert first.end(signal.SIGKILL)[0] == -signal.SIGKILL

    second = servers(data_dir, log)
    shown = httpx.get(f"{second.url}/api/v1/records/{crashed_id}", headers={"Authorization": f"Bearer {key}"}).json()
    assert shown["blockchain_status"] == "pending" and shown["batch"] is None
    later_id = _upload(second, key, 802)
    status, left_behind = second.end(signal.SIGTERM)
    assert status == -signal.SIGTERM  # uvicorn shuts down, then exits by the signal it was sent
    assert left_behind == []
    assert "Application shutdown complete" in log.read_text()

    service = Service(server_settings(data_dir))
    try:
        crashed, later = service.store.records([crashed_id, later_id])
        assert crashed.blockchain_status == later.blockchain_status == "anchored"
        assert crashed.batch_id == later.batch_id
        assert service.store.batch(crashed.batch_id).leaf_count == 2
    finally:
        service.close()
