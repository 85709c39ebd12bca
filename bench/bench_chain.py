"""Embedded-chain figures: anchors/s and gas per anchor by batch size, and journal replay time."""

import argparse
import os
import statistics
import time

from pipeline.embedded import ListJournal, open_embedded
from pipeline.merkle import MerkleTree

BATCH_SIZES = (1, 16, 256, 1024)


def random_leaves(count: int) -> list[list[bytes]]:
    """`count` provenance leaves of three random 32-byte values."""
    return [[os.urandom(32) for _ in range(3)] for _ in range(count)]


def bench_anchors(anchors: int) -> list[str]:
    """One table row per batch size: tree build time, anchor rate and gas."""
    chain = open_embedded(ListJournal())
    chain.ensure_registry(None)
    rows = []
    for size in BATCH_SIZES:
        started = time.perf_counter()
        trees = [MerkleTree.of(random_leaves(size)) for _ in range(anchors)]
        build_ms = (time.perf_counter() - started) * 1000 / anchors
        started = time.perf_counter()
        gas = [chain.anchor(tree.root, size).gas_used for tree in trees]
        rate = anchors / (time.perf_counter() - started)
        per_anchor = statistics.mean(gas)
        rows.append(
            f"| {size:>6} | {build_ms:>7.2f} | {rate:>9.1f} | {per_anchor:>10.0f}"
            f" | {per_anchor / size:>8.1f} | {rate * size:>8.0f} |"
        )
    return rows


def bench_replay(transactions: int) -> float:
    """Seconds to reopen the embedded chain from a journal, per 100 journalled transactions."""
    journal = ListJournal()
    chain = open_embedded(journal)
    chain.ensure_registry(None)
    for n in range(1, transactions):
        chain.anchor(n.to_bytes(32, "big"), 1)
    started = time.perf_counter()
    open_embedded(ListJournal(list(journal.items)))
    return (time.perf_counter() - started) * 100 / len(journal.items)


def main() -> None:
    """Parse the sizes to run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anchors", type=int, default=50, help="anchors per batch size")
    parser.add_argument("--replay", type=int, default=300, help="journalled transactions to replay")
    args = parser.parse_args()
    print(f"embedded chain (eth-tester + py-evm), {args.anchors} anchors per batch size")
    print("| leaves | tree ms | anchors/s | gas/anchor | gas/leaf | leaves/s |")
    print("|-------:|--------:|----------:|-----------:|---------:|---------:|")
    for row in bench_anchors(args.anchors):
        print(row)
    print(f"replay: {bench_replay(args.replay):.2f} s per 100 journalled transactions")


if __name__ == "__main__":
    main()
