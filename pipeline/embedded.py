"""The default in-process chain (eth-tester + py-evm), rebuilt at every start by replaying a journal.

The chain lives in memory. It survives a restart because every raw transaction sent to it (anchors,
deployments and NFT mints alike) is handed to a Journal with the timestamp of the block that mines
it, and a new process starts the same fixed genesis and mines each journalled transaction again in
its own block with the same timestamp. Every block hash, number and contract address comes out
identical, because nothing else varies: the genesis timestamp is fixed and each block's prevrandao is
derived from its parent's hash.

Confirmations: the chain mines one block per transaction as it arrives, so a transaction has one
confirmation at once and more only as later blocks come. Chain.mine(n) (evm_mine) adds n empty
blocks, journalled as entries with an empty transaction, so waiting for K > 1 works here too.
Requests are served one at a time, so threads may share the chain.

The signer is eth-tester's first default account: private key 0x00..01 (EMBEDDED_PRIVATE_KEY),
address 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf, funded with 1,000,000 ether at genesis. The key
is public knowledge; it only ever signs for this in-process chain.
"""

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from eth.constants import ZERO_ADDRESS
from eth.vm.forks.cancun import get_total_blob_gas
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3

from pipeline.chain import Chain, ChainError

NETWORK = "embedded"
GENESIS_TIMESTAMP = 1_704_067_200  # 2024-01-01T00:00:00Z, so the genesis hash never changes
EMBEDDED_PRIVATE_KEY = "0x" + "00" * 31 + "01"


class Journal(Protocol):
    """Durable record of the raw transactions mined on the embedded chain, in order."""

    def entries(self) -> Iterable[tuple[bytes, int]]:
        """Every (raw transaction or b"" for an empty block, block timestamp) so far, oldest first."""
        ...

    def append(self, raw_tx: bytes, block_timestamp: int) -> None:
        """Record one raw transaction (b"": an empty block) and the timestamp of its block."""
        ...


@dataclass
class ListJournal:
    """A Journal held in a list: for tests, and for runs that need not outlive the process."""

    items: list[tuple[bytes, int]] = field(default_factory=list)

    def entries(self) -> Iterable[tuple[bytes, int]]:
        """A snapshot of the entries, oldest first."""
        return tuple(self.items)

    def append(self, raw_tx: bytes, block_timestamp: int) -> None:
        """Add one entry at the end."""
        self.items.append((bytes(raw_tx), block_timestamp))


class JournalledBackend(PyEVMBackend):
    """A PyEVMBackend with reproducible blocks that replays a journal and then appends to it."""

    def __init__(self, journal: Journal) -> None:
        """Start the fixed genesis and mine every journalled transaction and empty block again."""
        self._journal: Journal | None = None
        params = PyEVMBackend.generate_genesis_params(overrides={"timestamp": GENESIS_TIMESTAMP})
        super().__init__(genesis_parameters=params)
        for position, (raw_tx, block_timestamp) in enumerate(journal.entries()):
            self._replay(position, raw_tx, block_timestamp)
        self._journal = journal

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        """Put the transaction in a block stamped now and journal it (eth-tester mines it next)."""
        block_timestamp = max(int(time.time()), self._head_timestamp() + 1)
        self.chain.header = self.chain.header.copy(timestamp=block_timestamp)
        tx_hash = super().send_raw_transaction(raw_transaction)
        try:
            self._journal.append(bytes(raw_transaction), block_timestamp)
        except BaseException:
            # Unjournalled means never sent: drop the pending block holding the transaction.
            self.chain.header = self.chain.create_header_from_parent(self.chain.get_canonical_head())
            raise
        return tx_hash

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = ZERO_ADDRESS) -> tuple[bytes, ...]:
        """Mine blocks whose prevrandao is keccak256 of the parent hash; journal the empty ones."""
        hashes = []
        for _ in range(num_blocks):
            parent_hash = self.chain.get_canonical_head().hash
            pending = self.chain.get_block().transactions
            if not pending and self._journal is not None:
                block_timestamp = max(int(time.time()), self._head_timestamp() + 1)
                self._journal.append(b"", block_timestamp)
                self.chain.header = self.chain.header.copy(timestamp=block_timestamp)
            block = self.chain.mine_block(
                coinbase=coinbase,
                mix_hash=keccak(parent_hash),
                blob_gas_used=sum(get_total_blob_gas(tx) for tx in pending),
            )
            hashes.append(block.hash)
        return tuple(hashes)

    def _head_timestamp(self) -> int:
        """Timestamp of the latest mined block."""
        return self.chain.get_canonical_head().timestamp

    def _replay(self, position: int, raw_tx: bytes, block_timestamp: int) -> None:
        """Mine one journalled transaction alone (or no transaction) in a block with its timestamp."""
        try:
            if block_timestamp <= self._head_timestamp():
                raise ValueError(f"timestamp {block_timestamp} does not follow the previous block")
            self.chain.header = self.chain.header.copy(timestamp=block_timestamp)
            if raw_tx:
                super().send_raw_transaction(raw_tx)
            self.mine_blocks()
        except Exception as exc:
            raise ChainError(
                f"journal entry {position} does not replay on the embedded chain ({exc}); the"
                " journal is damaged or was written by another provsim version: restore or delete it"
            ) from exc


class SerialTesterProvider(EthereumTesterProvider):
    """An EthereumTesterProvider that serves one request at a time, since py-evm is not thread-safe."""

    def __init__(self, tester: EthereumTester) -> None:
        """Serve `tester` behind a lock."""
        super().__init__(tester)
        self._lock = threading.RLock()

    def make_request(self, method, params):
        """Run one request while no other thread runs one."""
        with self._lock:
            return super().make_request(method, params)


def open_embedded(journal: Journal) -> Chain:
    """The in-process chain with `journal` replayed, signing with EMBEDDED_PRIVATE_KEY."""
    w3 = Web3(SerialTesterProvider(EthereumTester(JournalledBackend(journal))))
    return Chain(w3, EMBEDDED_PRIVATE_KEY, network=NETWORK)
