"""Support for the end-to-end tests: the provsim command in a subprocess and generated media."""
from __future__ import annotations

import os
import subprocess
import sys
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
