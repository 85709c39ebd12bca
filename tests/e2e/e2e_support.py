"""Support for the end-to-end tests: the provsim command in a subprocess and generated media."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def provsim(*args: str, check: bool = True, timeout: float = 120, env_extra: dict | None = None,
            **kw) -> subprocess.CompletedProcess:
    """Run the real `provsim` command line in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"provsim {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_images(directory: Path, count: int, size: tuple[int, int] = (96, 64), seed: int = 7) -> list[Path]:
    """Distinct small JPEGs with random blocky content (distinct perceptual hashes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        blocks = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(blocks).resize(size, Image.NEAREST)
        path = directory / f"img_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


@contextmanager
def listening(secret: str, dialect: str, dump: Path):
    """`provsim listen` on a free loopback port; yields its URL, stops it afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "listen", "--port", str(port), "--secret", secret,
         "--dialect", dialect, "--dump", str(dump)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert listener.poll() is None and time.monotonic() < deadline, "provsim listen did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/webhooks"
    finally:
        listener.terminate()
        listener.wait(10)
