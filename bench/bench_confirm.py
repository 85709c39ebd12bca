"""Time from the last item of a batch to its confirmed `batch.anchored` event, on each chain.

For each chain (embedded, anvil, ganache) and each confirmation depth K, registers one batch of
16 pre-analysed sample images and times the step from the last registration (which closes the
batch) to the confirmed event being committed to the outbox: anchor sent, mined, K blocks deep.
Started nodes mine a block per transaction at K=1 and a block a second at K>1, as `provsim run`
starts them.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from pipeline.analyze import analyze_file  # noqa: E402
from pipeline.connect import ChainSpec  # noqa: E402
from pipeline.lifecycle import ChainWorker  # noqa: E402
from pipeline.nodes import MissingNodeError  # noqa: E402
from pipeline.service import Service  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def corpus(n: int) -> list:
    """n distinct analysed images (generated once into bench/out/confirm)."""
    import numpy as np
    from PIL import Image

    directory = OUT / "confirm"
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    paths = []
    for i in range(n):
        path = directory / f"item_{i:03d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return [(analyze_file(str(p), 50 << 20, 500 << 20), str(p), p.name) for p in paths]


async def one_batch(service: Service, items: list, confirmations: int) -> float:
    """Seconds from the last registration of a batch to its confirmed event."""
    anchored = asyncio.Event()
    worker = ChainWorker(service, confirmations=confirmations, mint=False,
                         on_anchored=lambda batch_id, event_id: anchored.set())
    done = asyncio.Event()
    task = asyncio.create_task(worker.run(done))
    records = service.register_many(items)
    start = time.perf_counter()
    service.close_batch([rec.id for rec, _ in records])
    worker.wake()
    await anchored.wait()
    elapsed = time.perf_counter() - start
    done.set()
    await task
    return elapsed


def measure(kind: str, confirmations: int, items: list, rounds: int) -> list[float]:
    """Latencies of `rounds` batches on a fresh chain of this kind."""
    block_time = 1.0 if confirmations > 1 and kind != "embedded" else None
    latencies = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            spec = ChainSpec(kind=kind, block_time=block_time)
            service = Service(Settings(data_dir=Path(tmp), chain=spec, confirmations=confirmations))
            try:
                _ = service.chain
                latencies.append(asyncio.run(one_batch(service, items, confirmations)))
            finally:
                service.close()
    return latencies


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    items = corpus(16)
    print(f"one batch of {len(items)} items; seconds from the last item to its confirmed event"
          f" (median of {args.rounds})")
    print(f"| chain | K | median s | min s | max s |\n|---|--:|--:|--:|--:|")
    for kind in ("embedded", "anvil", "ganache"):
        for k in (1, 2):
            try:
                lat = measure(kind, k, items, args.rounds)
            except MissingNodeError as exc:
                print(f"| {kind} | {k} | skipped: {exc} | | |")
                break
            print(f"| {kind} | {k} | {statistics.median(lat):.3f} | {min(lat):.3f} | {max(lat):.3f} |")


if __name__ == "__main__":
    main()
