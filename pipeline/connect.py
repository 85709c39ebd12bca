"""Opens the chain a command asks for: the embedded one, a local anvil or ganache node, or an RPC URL."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .chain import Chain, ChainUnavailableError, open_rpc
from .embedded import Journal, open_embedded
from .nodes import NodeError, rpc, start_node

CHAIN_KINDS = ("embedded", "anvil", "ganache")
# Names for well-known chain ids; a local node is named after its kind.
NETWORKS = {1: "ethereum", 10: "optimism", 137: "polygon", 8453: "base", 42161: "arbitrum",
            80002: "polygon-amoy", 11155111: "sepolia", 31337: "anvil", 1337: "ganache"}
LOCAL_CHAIN_IDS = {"anvil": 31337, "ganache": 1337}


@dataclass(frozen=True)
class ChainSpec:
    """Which chain to use: a kind, or an RPC URL with the key that pays for transactions."""

    kind: str = "embedded"
    rpc_url: str | None = None
    private_key: str | None = None
    block_time: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in CHAIN_KINDS:
            raise ValueError(f"unknown chain {self.kind!r}: choose {', '.join(CHAIN_KINDS)} or give --rpc-url")


def network_of(rpc_url: str) -> str:
    """A name for the chain behind an RPC URL, from its chain id."""
    try:
        chain_id = int(rpc(rpc_url, "eth_chainId"), 16)
    except NodeError as exc:
        raise ChainUnavailableError(f"chain at {rpc_url} not answering: {exc}") from exc
    return NETWORKS.get(chain_id, f"chain-{chain_id}")


@contextmanager
def connected(spec: ChainSpec, journal: Journal) -> Iterator[Chain]:
    """The chain for this spec; a node started here is stopped on the way out, errors and Ctrl-C included."""
    if spec.rpc_url:
        key = spec.private_key or os.environ.get("PROVSIM_PRIVATE_KEY")
        if not key:
            raise ValueError("--rpc-url needs the key that pays for transactions: --private-key or $PROVSIM_PRIVATE_KEY")
        yield open_rpc(spec.rpc_url, key, network=network_of(spec.rpc_url))
        return
    if spec.kind == "embedded":
        yield open_embedded(journal)
        return
    with start_node(spec.kind, chain_id=LOCAL_CHAIN_IDS[spec.kind], block_time=spec.block_time) as node:
        yield open_rpc(node.url, node.funded_key, network=spec.kind)
