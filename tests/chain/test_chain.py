"""pipeline.chain.Chain on a real py-evm chain: registry deploy/reuse, anchors, reads, errors."""

import pytest
from eth.vm.forks import BerlinVM
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from pipeline.chain import (
    ANCHOR_GAS_LIMIT,
    AlreadyAnchoredError,
    AnchorReceipt,
    Chain,
    ChainError,
    NonceGapError,
    NonceTakenError,
)
from pipeline.embedded import EMBEDDED_PRIVATE_KEY, ListJournal, open_embedded
from pipeline.merkle import MerkleTree

ROOT = bytes.fromhex("5a" * 32)


def is_hash_hex(value: str) -> bool:
    """True for a lowercase 0x-prefixed 32-byte hex string."""
    return value.startswith("0x") and len(value) == 66 and value == value.lower()


def test_identity_properties(chain, w3):
    assert chain.network == "embedded"
    assert chain.chain_id == w3.eth.chain_id
    assert chain.genesis_hash == "0x" + w3.eth.get_block(0)["hash"].hex()
    assert is_hash_hex(chain.genesis_hash)
    assert chain.address == Account.from_key(EMBEDDED_PRIVATE_KEY).address


def test_calls_before_ensure_registry_say_what_to_do(w3):
    bare = Chain(w3, EMBEDDED_PRIVATE_KEY, network="embedded")
    assert bare.registry_address is None
    for call in (
        lambda: bare.anchor(ROOT, 1),
        lambda: bare.anchor_of(ROOT),
        lambda: bare.verify_proof(ROOT, [], ROOT),
    ):
        with pytest.raises(ChainError, match=r"call ensure_registry\(\) first"):
            call()


def test_ensure_registry_reuses_a_deployed_registry_without_a_transaction(chain, w3, journal):
    address = chain.registry_address
    height, entries = chain.block_number(), len(journal.items)
    assert chain.ensure_registry(address) == address
    assert chain.ensure_registry(address.lower()) == address
    other = Chain(w3, EMBEDDED_PRIVATE_KEY, network="embedded")
    assert other.ensure_registry(address) == address
    assert (chain.block_number(), len(journal.items)) == (height, entries)


@pytest.mark.parametrize("known", [None, "", "not-an-address", "0x" + "00" * 20, "account"])
def test_ensure_registry_deploys_when_nothing_usable_is_known(chain, known):
    known = chain.address if known == "account" else known
    height = chain.block_number()
    address = chain.ensure_registry(known)
    assert address not in (known, None)
    assert Web3.is_checksum_address(address)
    assert chain.registry_address == address
    assert chain.block_number() == height + 1


def test_anchor_returns_the_receipt_of_its_one_transaction(chain, w3):
    height = chain.block_number()
    receipt = chain.anchor(ROOT, 16)
    assert isinstance(receipt, AnchorReceipt)
    assert receipt.block_number == chain.block_number() == height + 1
    tx_receipt = w3.eth.get_transaction_receipt(receipt.transaction_hash)
    assert receipt.block_hash == "0x" + tx_receipt["blockHash"].hex()
    assert receipt.transaction_hash == "0x" + tx_receipt["transactionHash"].hex()
    assert is_hash_hex(receipt.transaction_hash) and is_hash_hex(receipt.block_hash)
    assert receipt.chain_id == chain.chain_id
    assert (receipt.transaction_index, receipt.log_index, receipt.removed) == (0, 0, False)
    assert receipt.gas_used == tx_receipt["gasUsed"] < ANCHOR_GAS_LIMIT
    assert w3.eth.get_transaction(receipt.transaction_hash)["type"] == 2


def test_anchor_of_reads_back_the_anchor(chain, w3):
    assert chain.anchor_of(ROOT) is None
    receipt = chain.anchor(ROOT, 1024)
    block = w3.eth.get_block(receipt.block_number)
    assert chain.anchor_of(ROOT) == (block["timestamp"], receipt.block_number, 1024)


def test_anchoring_a_root_twice_raises_already_anchored_with_the_first_anchor(chain):
    chain.anchor(ROOT, 3)
    first = chain.anchor_of(ROOT)
    with pytest.raises(AlreadyAnchoredError, match="already anchored") as failure:
        chain.anchor(ROOT, 3)
    assert isinstance(failure.value, ChainError)
    assert failure.value.anchor == first
    assert "\n" not in str(failure.value)
    assert chain.anchor(bytes.fromhex("5b" * 32), 1).block_number == chain.block_number()


@pytest.mark.parametrize(
    ("root", "count", "message"),
    [(bytes(32), 1, "not all zero"), (b"\x01" * 31, 1, "need 32 bytes"), (ROOT, 0, "at least 1")],
)
def test_invalid_anchor_is_refused_before_any_transaction(chain, root, count, message):
    height = chain.block_number()
    with pytest.raises(ChainError, match=message):
        chain.anchor(root, count)
    assert chain.block_number() == height


def test_verify_proof_is_the_contract_check(chain):
    tree = MerkleTree.of([["0x" + f"{i:064x}"] * 3 for i in range(1, 6)])
    assert chain.verify_proof(tree.root, tree.proof(2), tree.leaf(2)) is False
    chain.anchor(tree.root, len(tree))
    assert chain.verify_proof(tree.root, tree.proof(2), tree.leaf(2)) is True
    assert chain.verify_proof(tree.root, tree.proof(2), tree.leaf(3)) is False


def test_stale_local_nonce_resyncs_and_the_send_is_retried_once(chain, registry, send_raw, w3):
    used = send_raw(registry.address, registry.encode_abi("anchor", args=[ROOT, 1]))
    sent = chain.send_anchor(bytes.fromhex("77" * 32), 1)
    assert sent.nonce == w3.eth.get_transaction(used["transactionHash"])["nonce"] + 1
    assert chain.receipt(sent.tx_hash).gas_used > 0


def test_unfunded_account_gets_a_one_line_error(chain, w3):
    poor = Chain(w3, "0x" + "42" * 32, network="embedded")
    poor.ensure_registry(chain.registry_address)
    with pytest.raises(ChainError, match="refused the transaction.*balance") as failure:
        poor.anchor(ROOT, 1)
    assert "\n" not in str(failure.value)
    assert chain.anchor_of(ROOT) is None


def test_chain_without_base_fee_sends_legacy_transactions():
    # eth-tester cannot eth_call on a pre-London VM, so this checks the transaction alone.
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(vm_configuration=((0, BerlinVM),)))))
    legacy = Chain(w3, EMBEDDED_PRIVATE_KEY, network="berlin")
    legacy.ensure_registry(None)
    sent = legacy.send_anchor(ROOT, 2)
    assert w3.eth.get_transaction(sent.tx_hash)["type"] == 0
    assert w3.eth.get_transaction_receipt(sent.tx_hash)["status"] == 1
    assert legacy.rebroadcast(sent.raw) == sent.tx_hash
    assert legacy.network == "berlin"


def test_mined_empty_blocks_are_journalled_and_replay():
    journal = ListJournal()
    chain = open_embedded(journal)
    chain.ensure_registry(None)
    receipt = chain.anchor(ROOT, 4)
    assert chain.mine(3) == receipt.block_number + 3
    assert [raw for raw, _ in journal.items[-3:]] == [b"", b"", b""]
    chain.anchor(bytes.fromhex("5b" * 32), 1)
    replayed = open_embedded(ListJournal(list(journal.items)))
    assert replayed.head() == chain.head() == receipt.block_number + 4
    assert [replayed.block_hash(n) for n in range(chain.head() + 1)] == [
        chain.block_hash(n) for n in range(chain.head() + 1)
    ]


def test_receipt_is_none_until_known_and_refuses_other_transactions(chain, send_raw):
    assert chain.receipt("0x" + "ab" * 32) is None
    assert chain.transaction_known("0x" + "ab" * 32) is False
    transfer = send_raw(chain.address, "0x")
    with pytest.raises(ChainError, match="is not an anchor on the registry"):
        chain.receipt("0x" + transfer["transactionHash"].hex())


def test_rebroadcast_onto_a_chain_without_the_earlier_transactions_raises_nonce_gap():
    first = open_embedded(ListJournal())
    first.ensure_registry(None)
    sent = first.send_anchor(ROOT, 1)
    fresh = open_embedded(ListJournal())
    with pytest.raises(NonceGapError, match=f"nonce {sent.nonce} but {fresh.address} is at 0") as failure:
        fresh.rebroadcast(sent.raw)
    assert isinstance(failure.value, NonceTakenError)
    assert fresh.ensure_registry(None) == first.registry_address
