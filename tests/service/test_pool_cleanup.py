"""Analysis workers die with the provsim process that started them, even when it is killed outright."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD = """
import os, sys, time
from pathlib import Path
from pipeline.service import Service
from pipeline.settings import Settings
service = Service(Settings(data_dir=Path(sys.argv[1]), workers=2))
pids = {f.result() for f in [service.pool.submit(os.getpid) for _ in range(8)]}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Whether a process with this id still exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def fork_server(worker: int) -> int:
    """The parent of a pool worker: multiprocessing's fork server."""
    with open(f"/proc/{worker}/stat") as stat:
        return int(stat.read().split(") ", 1)[1].split()[1])


def test_sigkill_of_the_main_process_takes_the_workers_and_their_fork_server_down(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in child.stdout.readline().split()]
        assert workers and all(alive(pid) for pid in workers)
        workers += [fork_server(workers[0])]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
