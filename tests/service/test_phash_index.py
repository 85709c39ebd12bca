"""The pHash chunk index answers exactly as a scan of every record would, and is built for stores made before it."""
from __future__ import annotations

import random
from pathlib import Path

from pipeline.fingerprint import PHASH_THRESHOLD
from pipeline.records import Record, Signer
from pipeline.store import PHASH_CHUNK_BITS, Store

SIGNER = Signer("o", "news_agency", "k", "ed25519:1", "00")


def record(index: int, phash: str | None) -> Record:
    """A minimal record numbered index with this perceptual hash."""
    return Record(
        id=f"rec-{index:06d}", sha256=f"{index:064x}", blake3=f"{index:064x}", size=1, perceptual_hash=phash,
        phash_reason=None if phash else "not an image", mime="image/jpeg", original_filename=f"{index}.jpg",
        source=f"{index}.jpg", origin_type="digital_image", signed_at="2025-06-14T09:32:00Z", signature_hex="00",
        signer=SIGNER, context=None, batch_id=None, leaf_index=None, blockchain_status="pending",
    )


def flip(value: int, bits: int, rng: random.Random) -> int:
    """value with `bits` distinct random bits of 64 flipped."""
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


def brute_force(values: list[int | None], phash: str, max_distance: int) -> tuple[str, int] | None:
    """The nearest record within max_distance by scanning all in registration order (earliest wins a tie)."""
    value = int(phash, 16)
    distances = [((value ^ other).bit_count(), index) for index, other in enumerate(values) if other is not None]
    distance, index = min(distances, default=(max_distance + 1, None))
    return (f"rec-{index:06d}", distance) if distance <= max_distance else None


def as_ints(hashes: list[str | None]) -> list[int | None]:
    """The hashes as integers (None stays None)."""
    return [None if h is None else int(h, 16) for h in hashes]


def fill(store: Store, hashes: list[str | None]) -> None:
    """Register one record per hash, in order."""
    with store.transaction() as conn:
        for index, phash in enumerate(hashes):
            store.insert_record(conn, record(index, phash))


def corpus(rng: random.Random) -> tuple[list[str | None], list[str]]:
    """Stored hashes (random, near copies at 0..12 bits, exact duplicates, equidistant ties, some None) and queries."""
    bases = [rng.getrandbits(64) for _ in range(2000)]
    stored: list[int | None] = list(bases)
    queries = []
    for base in rng.sample(bases, 150):
        stored += [flip(base, rng.randint(0, 12), rng) for _ in range(3)]
        stored += [base] if rng.random() < 0.3 else []
        queries += [flip(base, bits, rng) for bits in range(13)]
    for _ in range(100):
        centre = rng.getrandbits(64)
        distance = rng.randint(0, PHASH_THRESHOLD)
        stored += [flip(centre, distance, rng) for _ in range(3)]
        queries.append(centre)
    stored += [None] * 50
    rng.shuffle(stored)
    queries += [rng.getrandbits(64) for _ in range(150)]
    return [None if h is None else f"{h:016x}" for h in stored], [f"{q:016x}" for q in queries]


def test_index_agrees_with_a_scan_of_every_record(tmp_path: Path):
    rng = random.Random(20250614)
    hashes, queries = corpus(rng)
    store = Store(tmp_path / "s.db")
    try:
        fill(store, hashes)
        values = as_ints(hashes)
        hits = {d: 0 for d in range(PHASH_THRESHOLD + 1)}
        for query in queries:
            nearest = brute_force(values, query, 64)
            for max_distance in (PHASH_THRESHOLD, 12, 4, 0):
                within = nearest if nearest[1] <= max_distance else None
                assert store.nearest_phash(query, max_distance) == within, (query, max_distance)
            if nearest[1] <= PHASH_THRESHOLD:
                hits[nearest[1]] += 1
        assert all(hits.values()), hits  # every distance 0..8 was found at least once
    finally:
        store.close()


def test_ties_go_to_the_earliest_record(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    try:
        fill(store, ["00000000000000ff", "000000000000000f", "00000000000000f0", "000000000000000f"])
        assert store.nearest_phash("0000000000000000", PHASH_THRESHOLD) == ("rec-000001", 4)
        assert store.nearest_phash("000000000000000f", PHASH_THRESHOLD) == ("rec-000001", 0)
        assert store.nearest_phash("ffffffffffffffff", PHASH_THRESHOLD) is None
    finally:
        store.close()


def test_a_store_without_the_index_gets_it_built_on_open(tmp_path: Path):
    rng = random.Random(7)
    hashes = [f"{rng.getrandbits(64):016x}" for _ in range(500)] + [None]
    path = tmp_path / "old.db"
    store = Store(path)
    fill(store, hashes)
    store.conn.execute("DROP TABLE phash_chunks")
    assert store.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'phash_chunks'").fetchone() is None
    store.close()

    store = Store(path)
    try:
        assert store.has_phash()
        for phash in rng.sample([h for h in hashes if h], 50):
            near = f"{int(phash, 16) ^ 0b101:016x}"
            assert store.nearest_phash(near, PHASH_THRESHOLD) == brute_force(as_ints(hashes), near, PHASH_THRESHOLD)
        assert store.conn.execute("SELECT COUNT(*) FROM phash_chunks").fetchone() == (500 * len(PHASH_CHUNK_BITS),)
    finally:
        store.close()
    store = Store(path)  # a second open finds the index there and adds nothing
    try:
        assert store.conn.execute("SELECT COUNT(*) FROM phash_chunks").fetchone() == (500 * len(PHASH_CHUNK_BITS),)
    finally:
        store.close()
