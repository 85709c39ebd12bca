"""Support for the security tests: the real provsim command, free loopback ports, a receiver in a thread."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

from emitter.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0  # seconds any one command may take


def provsim(*args: str, check: bool = True, umask: int | None = None) -> subprocess.CompletedProcess:
    """Run the real `provsim` command line (wide terminal, no inherited data directory), optionally under a umask."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROVSIM_DATA_DIR", "PROVSIM_PRIVATE_KEY")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    preexec = None if umask is None else (lambda: os.umask(umask))
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=ROOT, preexec_fn=preexec)
    if check and proc.returncode != 0:
        raise AssertionError(f"provsim {' '.join(args[:2])} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_provsim(*args: str) -> subprocess.Popen:
    """Start a long-running provsim command (serve, listen) with its output piped."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROVSIM_DATA_DIR", "PROVSIM_PRIVATE_KEY")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    """Interrupt a started command as Ctrl-C does and return its (stdout, stderr)."""
    proc.send_signal(2)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=10)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leaks(output: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets found in `output`, also when a line break or padding splits one."""
    squeezed = re.sub(r"\s+", "", output)
    return [name for name, value in secrets.items() if value and (value in output or value in squeezed)]


def pem_body(path: Path) -> str:
    """The base64 body of a PEM file: the private key's own characters."""
    lines = path.read_text().splitlines()
    return "".join(line for line in lines if not line.startswith("-----"))


class ThreadedReceiver:
    """emitter.receiver.Receiver on 127.0.0.1, on its own loop in a thread, for a subprocess to deliver to."""

    def __init__(self, secret: str, fail_first: int = 0, dialect: str = "tectra"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.receiver = Receiver(secret, dialect=dialect, fail_first=fail_first)
        asyncio.run_coroutine_threadsafe(self.receiver.start("127.0.0.1", 0), self.loop).result(TIMEOUT)
        self.url = self.receiver.url

    def close(self) -> None:
        """Stop listening and end the loop's thread."""
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()
