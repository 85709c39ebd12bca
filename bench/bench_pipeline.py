"""Items/s through the whole pipeline against the 2-core limit of its per-item CPU work.

Generates 1,000 distinct 1024x768 JPEGs (cached in bench/out/) and measures the per-item cost of
decode + perceptual hash + SHA-256 + BLAKE3 (analyze_file) two ways: on one core (times the core
count: the naive ceiling) and as the same bare work on every core at once (the limit: what these
cores really give when all are busy). Then runs the real pipeline (store, signing, batching,
anchoring on the embedded chain, outbox, and delivery to `provsim listen` in its own process) over
the same files with the chain and workers warm, and prints items/s against both (goal: 0.8).
A last run with the watermark stage on (a marked copy per item) shows what that stage costs.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from emitter.endpoint import Endpoint, new_secret  # noqa: E402
from pipeline.analyze import analyze_file, analyze_files  # noqa: E402
from pipeline.runner import run_pipeline  # noqa: E402
from pipeline.service import Service  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


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


def parallel_limit(paths: list[Path], workers: int) -> float:
    """Items/s of the bare per-item work (analyze_files in chunks) on `workers` busy processes."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(analyze_file, [str(p) for p in paths[:workers]], [50 << 20] * workers, [500 << 20] * workers))
        chunks = [[str(p) for p in paths[i:i + 8]] for i in range(0, len(paths), 8)]
        start = time.perf_counter()
        list(pool.map(analyze_files, chunks, [50 << 20] * len(chunks), [500 << 20] * len(chunks)))
        return len(paths) / (time.perf_counter() - start)


def per_item_cost(paths: list[Path], sample: int) -> float:
    """Seconds of CPU work per item (analyze_file in one process)."""
    chosen = paths[:sample]
    analyze_file(str(chosen[0]), 50 << 20, 500 << 20)  # warm up imports
    start = time.perf_counter()
    for p in chosen:
        analyze_file(str(p), 50 << 20, 500 << 20)
    return (time.perf_counter() - start) / len(chosen)


@contextmanager
def listener(secret: str):
    """`provsim listen` (the reference receiver, verifying every signature) in its own process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "listen", "--port", str(port), "--secret", secret],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def pipeline_rate(paths: list[Path], url: str | None, secret: str, batch_size: int,
                        mint: bool, watermark: bool = False) -> tuple[float, float, dict]:
    """Items/s of one full run over the files (fresh state; chain and workers warm), and main-process CPU ms/item."""
    with tempfile.TemporaryDirectory() as tmp:
        service = Service(Settings(data_dir=Path(tmp), batch_size=batch_size, batch_interval=5.0, mint_nfts=mint,
                                   watermark=watermark))
        if url:
            service.add_transient_endpoints([Endpoint.new(url, secret=secret, persistent=False)])
        _ = service.chain
        list(service.pool.map(analyze_file, [str(p) for p in paths[:4]], [50 << 20] * 4, [500 << 20] * 4))
        cpu = time.process_time()
        start = time.perf_counter()
        report = await run_pipeline(service, [str(p) for p in paths])
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        service.close()
    assert len(report.registered) == len(paths), report.errors[:3]
    assert not report.deliveries.get("failed"), report.deliveries
    assert len(report.marked) == (len(paths) if watermark else 0), report.errors[:3]
    return len(paths) / elapsed, cpu * 1000 / len(paths), report.deliveries


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--watermark-items", type=int, default=200, help="items of the run with --watermark")
    args = ap.parse_args()
    paths = make_corpus(args.items, OUT / "photos_1024x768")
    cores = os.cpu_count() or 1
    cost = per_item_cost(paths, args.sample)
    naive = cores / cost
    limit = parallel_limit(paths, cores)
    secret = new_secret()
    bare, bare_cpu, _ = asyncio.run(pipeline_rate(paths, None, secret, args.batch_size, mint=False))
    with listener(secret) as url:
        full, full_cpu, deliveries = asyncio.run(pipeline_rate(paths, url, secret, args.batch_size, mint=False))
        nft, nft_cpu, _ = asyncio.run(pipeline_rate(paths, url, secret, args.batch_size, mint=True))
    marked, marked_cpu, _ = asyncio.run(pipeline_rate(paths[:args.watermark_items], None, secret, args.batch_size,
                                                      mint=False, watermark=True))
    print(f"items: {len(paths)} JPEGs 1024x768, {cores} cores, batch size {args.batch_size}")
    print(f"per-item decode + phash + SHA-256 + BLAKE3: {cost * 1000:.2f} ms on one core"
          f" -> {cores} x 1 core = {naive:.1f} items/s")
    print(f"limit: the same work alone on {cores} busy worker processes = {limit:.1f} items/s"
          f" ({limit / naive:.2f} of {cores} x 1 core)")
    print(f"{'run':36} {'items/s':>8} {'of limit':>9} {'main CPU ms/item':>17}")
    print(f"{'pipeline, no endpoint':36} {bare:8.1f} {bare / limit:9.2f} {bare_cpu:17.2f}")
    print(f"{'pipeline + provsim listen':36} {full:8.1f} {full / limit:9.2f} {full_cpu:17.2f}"
          f"   ({deliveries['delivered']} deliveries verified and delivered)")
    print(f"{'... and an NFT per item (embedded)':36} {nft:8.1f} {nft / limit:9.2f} {nft_cpu:17.2f}"
          "   (py-evm runs each mint in this process)")
    print(f"{'pipeline --watermark, no endpoint':36} {marked:8.1f} {marked / limit:9.2f} {marked_cpu:17.2f}"
          f"   ({args.watermark_items} items: embed, JPEG write, read-back check, hash of each copy)")
    print(f"goal: at least 0.80 of limit; against {cores} x 1 core: {bare / naive:.2f} and {full / naive:.2f}")


if __name__ == "__main__":
    main()
