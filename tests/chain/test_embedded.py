"""pipeline.embedded: a journalled in-process chain that replays to identical blocks after a restart."""

import json
import subprocess
import sys

import pytest
from eth_account import Account
from web3 import Web3

from pipeline.chain import Chain, ChainError
from pipeline.embedded import EMBEDDED_PRIVATE_KEY, GENESIS_TIMESTAMP, ListJournal, open_embedded

# Changes only if eth-tester or py-evm change their genesis: then old journals replay onto another chain.
GENESIS_HASH = "0x919eb06f27b0df04962310a970fa92bddafc6c7f4eadb7a5a862ca2782fa95f9"


def root(n: int) -> bytes:
    """A distinct non-zero 32-byte root."""
    return n.to_bytes(32, "big")


def web3_of(chain: Chain) -> Web3:
    """The Web3 behind a Chain, to inspect blocks the narrow interface does not expose."""
    return chain._w3


def block_hashes(chain: Chain) -> list[str]:
    """Hash of every block from genesis to the head."""
    w3 = web3_of(chain)
    return ["0x" + w3.eth.get_block(n)["hash"].hex() for n in range(chain.block_number() + 1)]


def populated(journal: ListJournal, anchors: int = 5) -> Chain:
    """An embedded chain with the registry deployed, `anchors` roots anchored and one reverted."""
    chain = open_embedded(journal)
    chain.ensure_registry(None)
    for n in range(1, anchors + 1):
        chain.anchor(root(n), n)
    with pytest.raises(ChainError):
        chain.anchor(root(1), 1)
    return chain


def test_genesis_is_fixed():
    first, second = open_embedded(ListJournal()), open_embedded(ListJournal())
    assert first.genesis_hash == second.genesis_hash == GENESIS_HASH
    assert web3_of(first).eth.get_block(0)["timestamp"] == GENESIS_TIMESTAMP
    assert first.network == "embedded"
    assert first.address == Account.from_key(EMBEDDED_PRIVATE_KEY).address
    assert web3_of(first).eth.get_balance(first.address) == 10**24


def test_every_transaction_is_journalled_with_its_block_timestamp():
    journal = ListJournal()
    chain = populated(journal)
    w3 = web3_of(chain)
    assert len(journal.items) == 1 + 5 + 1 == chain.block_number()
    for number, (raw_tx, timestamp) in enumerate(journal.entries(), start=1):
        block = w3.eth.get_block(number, full_transactions=True)
        assert block["timestamp"] == timestamp
        assert [tx["hash"] for tx in block["transactions"]] == [Web3.keccak(raw_tx)]


def test_replay_gives_the_same_blocks_registry_and_anchors():
    journal = ListJournal()
    chain = populated(journal)
    address = chain.registry_address
    replayed = open_embedded(ListJournal(list(journal.items)))
    assert block_hashes(replayed) == block_hashes(chain)
    assert replayed.ensure_registry(address) == address
    for n in range(1, 6):
        assert replayed.anchor_of(root(n)) == chain.anchor_of(root(n)) is not None
    assert replayed.anchor_of(root(99)) is None


def test_replayed_chain_goes_on_and_replays_again():
    journal = ListJournal()
    address = populated(journal, anchors=2).registry_address
    resumed_journal = ListJournal(list(journal.items))
    resumed = open_embedded(resumed_journal)
    assert resumed.ensure_registry(address) == address
    receipt = resumed.anchor(root(50), 8)
    assert len(resumed_journal.items) == len(journal.items) + 1
    again = open_embedded(ListJournal(list(resumed_journal.items)))
    assert block_hashes(again) == block_hashes(resumed)
    again.ensure_registry(resumed.registry_address)
    assert again.anchor_of(root(50))[1] == receipt.block_number


def test_replay_in_a_new_process_gives_the_same_head():
    journal = ListJournal()
    chain = populated(journal, anchors=2)
    script = (
        "import json, sys\n"
        "from pipeline.embedded import ListJournal, open_embedded\n"
        "items = [(bytes.fromhex(r), t) for r, t in json.load(sys.stdin)]\n"
        "chain = open_embedded(ListJournal(items))\n"
        "print(chain.block_number(), chain._w3.eth.get_block('latest')['hash'].hex())\n"
    )
    entries = json.dumps([(raw.hex(), ts) for raw, ts in journal.items])
    out = subprocess.run(
        [sys.executable, "-c", script], input=entries, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == [str(chain.block_number()), web3_of(chain).eth.get_block("latest")["hash"].hex()]


def test_journal_missing_an_entry_does_not_replay():
    journal = ListJournal()
    populated(journal, anchors=3)
    damaged = ListJournal(journal.items[:2] + journal.items[3:])
    with pytest.raises(ChainError, match="journal entry 2 does not replay"):
        open_embedded(damaged)


def test_journal_with_timestamps_out_of_order_does_not_replay():
    journal = ListJournal()
    populated(journal, anchors=2)
    (raw, _), *rest = journal.items
    with pytest.raises(ChainError, match="journal entry 0 does not replay.*does not follow"):
        open_embedded(ListJournal([(raw, GENESIS_TIMESTAMP), *rest]))


class FailingOnceJournal(ListJournal):
    """A journal whose next append fails, like a store that cannot write."""

    fail_next = False

    def append(self, raw_tx: bytes, block_timestamp: int) -> None:
        """Fail once when armed, else record."""
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        super().append(raw_tx, block_timestamp)


def test_transaction_that_cannot_be_journalled_is_not_mined():
    journal = FailingOnceJournal()
    chain = open_embedded(journal)
    chain.ensure_registry(None)
    height, entries = chain.block_number(), list(journal.items)
    journal.fail_next = True
    with pytest.raises(ChainError, match="disk full"):
        chain.anchor(root(7), 1)
    assert (chain.block_number(), journal.items) == (height, entries)
    assert chain.anchor_of(root(7)) is None
    chain.anchor(root(7), 1)
    replayed = open_embedded(ListJournal(list(journal.items)))
    assert block_hashes(replayed) == block_hashes(chain)


def test_list_journal_entries_are_a_snapshot():
    journal = ListJournal()
    journal.append(bytearray(b"\x02tx"), 5)
    snapshot = journal.entries()
    journal.append(b"\x02tx2", 6)
    assert list(snapshot) == [(b"\x02tx", 5)]
    assert journal.items == [(b"\x02tx", 5), (b"\x02tx2", 6)]
