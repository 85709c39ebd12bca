"""Items/s through the whole pipeline against the 2-core limit of its per-item CPU work.

Generates 1,000 distinct 1024x768 JPEGs (cached in bench/out/), measures the per-item cost of
decode + perceptual hash + SHA-256 + BLAKE3 (analyze_file) in one process, and divides the cores by
it: that is the most any pipeline could do here. Then runs the real pipeline (store, signing,
batching, anchoring on the embedded chain, outbox, and delivery to a loopback receiver) over the
same files and prints both figures with their ratio (goal: at least 0.8).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emitter.endpoint import Endpoint, new_secret  # noqa: E402
from emitter.receiver import Receiver  # noqa: E402
from pipeline.analyze import analyze_file  # noqa: E402
from pipeline.runner import run_pipeline  # noqa: E402
from pipeline.service import Service  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def make_corpus(n: int, directory: Path) -> list[Path]:
    """n distinct photo-like 1024x768 JPEGs (smooth gradients plus noise), generated once."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    yy, xx = np.mgrid[0:768, 0:1024].astype(np.float32)
    paths = []
    for i in range(n):
        path = directory / f"photo_{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        a, b, c = rng.uniform(0.002, 0.02, 3)
        base = np.stack([np.sin(xx * a + i), np.cos(yy * b - i), np.sin((xx + yy) * c)], axis=-1)
        img = ((base + 1) * 110 + rng.normal(0, 12, (768, 1024, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(path, quality=85)
    return paths


def per_item_cost(paths: list[Path], sample: int) -> float:
    """Seconds of CPU work per item (analyze_file in one process)."""
    chosen = paths[:sample]
    analyze_file(str(chosen[0]), 50 << 20, 500 << 20)  # warm up imports
    start = time.perf_counter()
    for p in chosen:
        analyze_file(str(p), 50 << 20, 500 << 20)
    return (time.perf_counter() - start) / len(chosen)


async def pipeline_rate(paths: list[Path], with_receiver: bool, batch_size: int) -> tuple[float, dict]:
    """Items/s of one full run over the files (fresh state each time)."""
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Settings(data_dir=Path(tmp), batch_size=batch_size, batch_interval=5.0))
        receiver = None
        if with_receiver:
            secret = new_secret()
            receiver = Receiver(secret)
            port = await receiver.start()
            service.add_transient_endpoints([Endpoint.new(f"http://127.0.0.1:{port}/", secret=secret,
                                                          persistent=False)])
        _ = service.chain
        start = time.perf_counter()
        report = await run_pipeline(service, [str(p) for p in paths])
        elapsed = time.perf_counter() - start
        if receiver:
            await receiver.stop()
        service.close()
    assert len(report.registered) == len(paths), report.errors[:3]
    return len(paths) / elapsed, report.deliveries


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    paths = make_corpus(args.items, OUT / "photos_1024x768")
    cores = os.cpu_count() or 1
    cost = per_item_cost(paths, args.sample)
    limit = cores / cost
    bare, _ = asyncio.run(pipeline_rate(paths, with_receiver=False, batch_size=args.batch_size))
    full, deliveries = asyncio.run(pipeline_rate(paths, with_receiver=True, batch_size=args.batch_size))
    print(f"items: {len(paths)} JPEGs 1024x768, {cores} cores, batch size {args.batch_size}")
    print(f"per-item decode + phash + SHA-256 + BLAKE3: {cost * 1000:.1f} ms -> limit {limit:.1f} items/s")
    print(f"{'pipeline, no endpoint':38} {bare:8.1f} items/s  {bare / limit:5.2f} of limit")
    print(f"{'pipeline, delivering to a receiver':38} {full:8.1f} items/s  {full / limit:5.2f} of limit  {deliveries}")
    print("goal: at least 0.80 of limit")


if __name__ == "__main__":
    main()
