"""Nearest-pHash lookup through the chunk index (Store.nearest_phash) against a scan of every record, at 100,000 records.

A fresh store in a temporary directory (deleted afterwards) gets --records records with random
64-bit pHashes, plus --copies near copies of some of them (1..8 bits flipped), all registered
through Store.insert_record. Hits are queries 0..8 bits from a registered hash; misses are random
hashes (nearly always 20+ bits from everything). Each lookup's result is checked against the scan.
Goal: mean and p99 lookup under 10 ms, hits and misses alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.fingerprint import PHASH_THRESHOLD  # noqa: E402
from pipeline.records import Record, Signer  # noqa: E402
from pipeline.store import Store  # noqa: E402

GOAL_MS = 10.0
SIGNER = Signer("Bench", "news_agency", "bench", "ed25519:bench", "00")


def flip(value: int, bits: int, rng: random.Random) -> int:
    """value with `bits` distinct random bits of 64 flipped."""
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


def record(index: int, phash: int) -> Record:
    """A minimal record numbered index with this pHash."""
    return Record(
        id=f"rec-{index:07d}", sha256=f"{index:064x}", blake3=f"{index:064x}", size=1, perceptual_hash=f"{phash:016x}",
        phash_reason=None, mime="image/jpeg", original_filename=f"{index}.jpg", source=f"{index}.jpg",
        origin_type="digital_image", signed_at="2025-06-14T09:32:00Z", signature_hex="00", signer=SIGNER,
        context=None, batch_id=None, leaf_index=None, blockchain_status="pending",
    )


def scan(store: Store, phash: str) -> tuple[str, int] | None:
    """The nearest record within the threshold by reading and comparing every record (the lookup before the index)."""
    value, best = int(phash, 16), None
    for record_id, other in store.conn.execute(
        "SELECT id, perceptual_hash FROM records WHERE perceptual_hash IS NOT NULL ORDER BY seq"
    ):
        distance = (value ^ int(other, 16)).bit_count()
        if best is None or distance < best[1]:
            best = (record_id, distance)
    return best if best is not None and best[1] <= PHASH_THRESHOLD else None


def timed(store: Store, queries: list[str]) -> tuple[list[float], list[tuple[str, int] | None]]:
    """Each query's lookup time in ms, and its answer."""
    times, answers = [], []
    for query in queries:
        start = time.perf_counter()
        answers.append(store.nearest_phash(query, PHASH_THRESHOLD))
        times.append((time.perf_counter() - start) * 1000)
    return times, answers


def summary(times: list[float]) -> str:
    """Mean and p99 of lookup times in ms, with the verdict against the goal."""
    p99 = statistics.quantiles(times, n=100)[98]
    verdict = "OK" if max(statistics.fmean(times), p99) < GOAL_MS else "MISSED"
    return f"mean {statistics.fmean(times):6.3f} ms  p99 {p99:6.3f} ms  ({verdict}, goal < {GOAL_MS:g} ms)"


def main() -> None:
    """Fill a store, time lookups for hits and misses and a few scans, check the answers agree, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records with random pHashes")
    parser.add_argument("--copies", type=int, default=5_000, help="near copies of registered hashes, 1..8 bits away")
    parser.add_argument("--queries", type=int, default=1_000, help="lookups of each kind (hit, miss)")
    parser.add_argument("--scans", type=int, default=20, help="scans of every record, for comparison")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bases = [rng.getrandbits(64) for _ in range(args.records)]
    hashes = bases + [flip(rng.choice(bases), rng.randint(1, PHASH_THRESHOLD), rng) for _ in range(args.copies)]
    hits = [f"{flip(rng.choice(hashes), rng.randint(0, PHASH_THRESHOLD), rng):016x}" for _ in range(args.queries)]
    misses = [f"{rng.getrandbits(64):016x}" for _ in range(args.queries)]

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        try:
            start = time.perf_counter()
            with store.transaction() as conn:
                for index, phash in enumerate(hashes):
                    store.insert_record(conn, record(index, phash))
            fill_s = time.perf_counter() - start
            hit_times, hit_answers = timed(store, hits)
            miss_times, miss_answers = timed(store, misses)
            checked = list(zip(hits, hit_answers))[: args.scans // 2] + list(zip(misses, miss_answers))[: args.scans // 2]
            scan_times, agree = [], 0
            for query, answer in checked:
                start = time.perf_counter()
                agree += scan(store, query) == answer
                scan_times.append((time.perf_counter() - start) * 1000)
            db_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
        finally:
            store.close()

    print(f"store: {len(hashes)} records ({args.records} random pHashes + {args.copies} near copies),"
          f" inserted in {fill_s:.1f} s ({fill_s / len(hashes) * 1e6:.0f} us each); file {db_mb:.0f} MB after inserts")
    found = sum(a is not None for a in hit_answers)
    print(f"hits   ({args.queries}, 0..{PHASH_THRESHOLD} bits, {found} found)  {summary(hit_times)}")
    print(f"misses ({args.queries}, random, {sum(a is not None for a in miss_answers)} found)  {summary(miss_times)}")
    print(f"scan of every record ({len(scan_times)} queries)  mean {statistics.fmean(scan_times):7.1f} ms"
          f"  (index {statistics.fmean(scan_times) / statistics.fmean(hit_times + miss_times):.0f}x faster)")
    print(f"answers agree with the scan: {agree}/{len(checked)}")


if __name__ == "__main__":
    main()
