"""Chain figures on each backend: anchors/s, gas per anchor and leaf, mint gas per token, journal replay."""

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from eth_account import Account

from pipeline.chain import Chain, open_rpc
from pipeline.embedded import ListJournal, open_embedded
from pipeline.merkle import MerkleTree
from pipeline.nodes import NODE_KINDS, NodeError, start_node

BATCH_SIZES = (1, 16, 256, 1024)
MINT_SIZES = (16, 256)


def random_leaves(count: int) -> list[list[bytes]]:
    """`count` provenance leaves of three random 32-byte values."""
    return [[os.urandom(32) for _ in range(3)] for _ in range(count)]


@contextmanager
def opened(kind: str) -> Iterator[Chain]:
    """A Chain with both contracts deployed on a fresh chain of this kind (a node is started and stopped)."""
    if kind == "embedded":
        chain = open_embedded(ListJournal())
        chain.ensure_registry(None)
        chain.ensure_nft(None)
        yield chain
        return
    with start_node(kind) as node:
        chain = open_rpc(node.url, node.funded_key, network=kind)
        chain.ensure_registry(None)
        chain.ensure_nft(None)
        yield chain


def bench_anchors(chain: Chain, anchors: int) -> list[str]:
    """One row per batch size: tree build time, anchor rate one at a time and sent together, gas."""
    rows = []
    for size in BATCH_SIZES:
        started = time.perf_counter()
        trees = [MerkleTree.of(random_leaves(size)) for _ in range(2 * anchors)]
        build_ms = (time.perf_counter() - started) * 1000 / len(trees)
        started = time.perf_counter()
        gas = [chain.anchor(tree.root, size).gas_used for tree in trees[:anchors]]
        serial = anchors / (time.perf_counter() - started)
        started = time.perf_counter()
        sent = [chain.send_anchor(tree.root, size) for tree in trees[anchors:]]
        for tx in sent:
            while chain.receipt(tx.tx_hash) is None:
                time.sleep(0.002)
        together = anchors / (time.perf_counter() - started)
        per_anchor = statistics.mean(gas)
        rows.append(
            f"| {chain.network:<8} | {size:>6} | {build_ms:>7.2f} | {serial:>9.1f} | {together:>10.1f}"
            f" | {per_anchor:>10.0f} | {per_anchor / size:>8.1f} |"
        )
    return rows


def bench_mints(chain: Chain) -> list[str]:
    """One row per mint size: gas per token when every token goes to one owner, and to distinct owners."""
    rows = []
    for size in MINT_SIZES:
        hashes = [os.urandom(32) for _ in range(size)]
        figures = []
        for recipients in ([chain.address] * size, [Account.create().address for _ in range(size)]):
            started = time.perf_counter()
            sent = chain.send_mint(recipients, hashes)
            while (minted := chain.mint_receipt(sent.tx_hash)) is None:
                time.sleep(0.002)
            figures.append((minted.receipt.gas_used / size, (time.perf_counter() - started) * 1000))
        (same, same_ms), (distinct, distinct_ms) = figures
        rows.append(
            f"| {chain.network:<8} | {size:>6} | {same:>20.0f} | {distinct:>26.0f} | {same_ms:>13.0f} |"
            f" {distinct_ms:>12.0f} |"
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
    """Parse the options and print the figures of each chain whose node can be started."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anchors", type=int, default=50, help="anchors per batch size and way of sending")
    parser.add_argument("--replay", type=int, default=300, help="journalled transactions to replay")
    parser.add_argument("--chains", nargs="+", default=["embedded", *NODE_KINDS], help="chains to measure")
    args = parser.parse_args()
    anchor_rows, mint_rows, skipped = [], [], []
    for kind in args.chains:
        try:
            with opened(kind) as chain:
                anchor_rows += bench_anchors(chain, args.anchors)
                mint_rows += bench_mints(chain)
        except NodeError as exc:
            skipped.append(f"{kind}: skipped ({exc})")
    print(f"anchors: {args.anchors} one at a time (anchor) and {args.anchors} sent together (send_anchor)")
    print("| chain    | leaves | tree ms |  serial/s | together/s | gas/anchor | gas/leaf |")
    print("|----------|-------:|--------:|----------:|-----------:|-----------:|---------:|")
    print("\n".join(anchor_rows))
    print("\nbatch mints (mintBatch): gas per token, and time from send to receipt")
    print("| chain    | tokens | gas/token, one owner | gas/token, distinct owners | ms, one owner |"
          " ms, distinct |")
    print("|----------|-------:|---------------------:|---------------------------:|--------------:|"
          "-------------:|")
    print("\n".join(mint_rows))
    for line in skipped:
        print(line)
    if "embedded" in args.chains:
        print(f"\nreplay: {bench_replay(args.replay):.2f} s per 100 journalled transactions (embedded)")


if __name__ == "__main__":
    main()
