"""One suite of chain behaviour, run against every backend: the embedded chain, anvil and ganache."""

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TypeVar

import pytest
from eth_account import Account
from eth_tester import EthereumTester
from eth_utils import keccak
from web3 import HTTPProvider, Web3

from pipeline.chain import (
    AlreadyAnchoredError,
    Chain,
    ChainError,
    ChainUnavailableError,
    NonceGapError,
    NonceTakenError,
    open_rpc,
)
from pipeline.embedded import EMBEDDED_PRIVATE_KEY, JournalledBackend, ListJournal, SerialTesterProvider
from pipeline.merkle import MerkleTree
from pipeline.nodes import NODE_KINDS, LocalNode, reorg, rpc, start_node
from pipeline.registry import NFT_CONTRACT_NAME, load_artifact

T = TypeVar("T")
ROYAL_TRANSACTION_FIELDS = {
    "transaction_hash": str,
    "block_hash": str,
    "block_number": int,
    "chain_id": int,
    "log_index": int,
    "transaction_index": int,
    "removed": bool,
}


@dataclass
class Backend:
    """One chain under test: its kind, a web3 of its own to inspect it, the funded key, its node if any."""

    kind: str
    w3: Web3
    key: str
    node: LocalNode | None

    def open(self, key: str | None = None) -> Chain:
        """A new Chain on this backend, signing with `key` (the funded key by default)."""
        key = key or self.key
        if self.node is None:
            return Chain(self.w3, key, network=self.kind)
        return open_rpc(self.node.url, key, network=self.kind)


@pytest.fixture(scope="module", params=["embedded", *NODE_KINDS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend once per module: a fresh embedded chain, or a node started for the module."""
    if request.param == "embedded":
        w3 = Web3(SerialTesterProvider(EthereumTester(JournalledBackend(ListJournal()))))
        yield Backend("embedded", w3, EMBEDDED_PRIVATE_KEY, None)
        return
    node = start_node(request.param)
    try:
        yield Backend(request.param, Web3(HTTPProvider(node.url)), node.funded_key, node)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def chain(backend: Backend) -> Chain:
    """The backend's Chain with the registry and the NFT contract deployed."""
    chain = backend.open()
    chain.ensure_registry(None)
    chain.ensure_nft(None)
    return chain


def fresh_root() -> bytes:
    """A root no test used before."""
    return keccak(time.perf_counter_ns().to_bytes(16, "big") + Account.create().key)


def wait_for(fetch: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll `fetch` until it gives a value."""
    deadline = time.monotonic() + timeout
    while (value := fetch()) is None:
        assert time.monotonic() < deadline, "timed out waiting for the chain"
        time.sleep(0.01)
    return value


def send_outside(backend: Backend, chain: Chain, to: str, value: int = 0) -> str:
    """Send a transfer from the chain's own account behind its back; return the transaction hash."""
    account = Account.from_key(backend.key)
    block = backend.w3.eth.get_block("latest")
    tx = {
        "chainId": chain.chain_id,
        "nonce": backend.w3.eth.get_transaction_count(account.address, "pending"),
        "to": to,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    tx_hash = backend.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    wait_for(lambda: chain.transaction_known("0x" + tx_hash.hex()) or None)
    return "0x" + tx_hash.hex()


def test_contracts_are_reused_without_a_transaction(backend, chain):
    head = chain.head()
    other = backend.open()
    registry = other.ensure_registry_verbose(chain.registry_address)
    nft = other.ensure_nft_verbose(chain.nft_address.lower())
    assert (registry.address, registry.deployed) == (chain.registry_address, False)
    assert (nft.address, nft.deployed) == (chain.nft_address, False)
    assert other.head() == head


def test_a_wrong_known_address_gets_a_fresh_deployment_and_says_why(backend, chain, caplog):
    other = backend.open()
    wrong_code = other.ensure_nft_verbose(chain.registry_address)
    no_code = other.ensure_registry_verbose(chain.address)
    garbage = other.ensure_registry_verbose("0x12")
    assert wrong_code.deployed and no_code.deployed and garbage.deployed
    assert wrong_code.reason == f"the code at {chain.registry_address} is not this ProvenanceNFT build"
    assert no_code.reason == f"no code at {chain.address}"
    assert garbage.reason == "'0x12' is not an address"
    assert other.ensure_registry(None) not in (chain.registry_address, no_code.address)
    assert f"deployed a new ProvenanceNFT at {wrong_code.address}" in caplog.text


def test_an_nft_contract_owned_by_another_account_is_not_reused(backend, chain):
    stranger = Account.create()
    send_outside(backend, chain, stranger.address, value=10**18)
    chain.resync_nonce()
    theirs = backend.open(stranger.key.hex())
    deployment = theirs.ensure_nft_verbose(chain.nft_address)
    assert deployment.deployed
    assert deployment.reason == (
        f"the ProvenanceNFT at {chain.nft_address} is owned by {chain.address}, not by {theirs.address}"
    )


def test_send_anchor_then_receipt_has_every_royal_transaction_field(backend, chain):
    root = fresh_root()
    sent = chain.send_anchor(root, 8)
    assert sent.tx_hash == "0x" + keccak(sent.raw).hex()
    receipt = wait_for(lambda: chain.receipt(sent.tx_hash))
    fields = asdict(receipt)
    for name, kind in ROYAL_TRANSACTION_FIELDS.items():
        assert type(fields[name]) is kind, name
    node_receipt = backend.w3.eth.get_transaction_receipt(sent.tx_hash)
    (log,) = [entry for entry in node_receipt["logs"] if entry["address"] == chain.registry_address]
    assert receipt.transaction_hash == sent.tx_hash
    assert receipt.block_hash == "0x" + node_receipt["blockHash"].hex()
    assert receipt.block_number == node_receipt["blockNumber"]
    assert receipt.chain_id == backend.w3.eth.chain_id == chain.chain_id
    assert receipt.log_index == log["logIndex"]
    assert receipt.transaction_index == node_receipt["transactionIndex"]
    assert receipt.removed is False and receipt.gas_used == node_receipt["gasUsed"]
    assert backend.w3.eth.get_transaction(sent.tx_hash)["nonce"] == sent.nonce
    assert chain.anchor_of(root)[1:] == (receipt.block_number, 8)


def test_confirmations_grow_with_mined_blocks(chain):
    receipt = chain.anchor(fresh_root(), 1)
    assert chain.mine(2) == chain.head() >= receipt.block_number + 2
    assert chain.head() - receipt.block_number + 1 >= 3
    assert chain.receipt(receipt.transaction_hash) == receipt


def test_verify_proof_runs_on_chain(chain):
    tree = MerkleTree.of([[fresh_root(), fresh_root(), fresh_root()] for _ in range(5)])
    assert chain.verify_proof(tree.root, tree.proof(3), tree.leaf(3)) is False
    chain.anchor(tree.root, len(tree))
    assert all(chain.verify_proof(tree.root, tree.proof(i), tree.leaf(i)) for i in range(5))
    assert chain.verify_proof(tree.root, tree.proof(3), tree.leaf(4)) is False


def test_anchoring_a_root_twice_raises_already_anchored_and_find_anchor_gives_the_first(chain):
    root = fresh_root()
    first = chain.anchor(root, 2)
    with pytest.raises(AlreadyAnchoredError, match="already anchored") as failure:
        chain.anchor(root, 2)
    assert failure.value.anchor == chain.anchor_of(root)
    assert failure.value.anchor[1] == first.block_number
    assert chain.find_anchor(root) == first
    assert chain.find_anchor(fresh_root()) is None


def test_concurrent_sends_from_four_threads_never_share_a_nonce(chain):
    roots = [fresh_root() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = list(pool.map(lambda root: chain.send_anchor(root, 1), roots))
    nonces = sorted(s.nonce for s in sent)
    assert nonces == list(range(nonces[0], nonces[0] + 20))
    receipts = [wait_for(lambda s=s: chain.receipt(s.tx_hash)) for s in sent]
    assert len({r.transaction_hash for r in receipts}) == 20
    assert all(chain.anchor_of(root) is not None for root in roots)


def test_a_nonce_used_behind_the_chains_back_is_resynced_and_the_send_retried(backend, chain):
    outside = send_outside(backend, chain, chain.address)
    sent = chain.send_anchor(fresh_root(), 1)
    assert sent.nonce == backend.w3.eth.get_transaction(outside)["nonce"] + 1
    assert wait_for(lambda: chain.receipt(sent.tx_hash)).gas_used > 0


def test_mint_batch_gives_sequential_tokens_with_their_content_hashes(backend, chain):
    nft = backend.w3.eth.contract(address=chain.nft_address, abi=load_artifact(NFT_CONTRACT_NAME).abi)
    first_id = nft.functions.nextTokenId().call()
    recipients = [Account.create().address for _ in range(5)]
    hashes = [fresh_root() for _ in range(5)]
    sent = chain.send_mint(recipients, hashes)
    minted = wait_for(lambda: chain.mint_receipt(sent.tx_hash))
    assert [t.token_id for t in minted.tokens] == list(range(first_id, first_id + 5))
    assert [(t.to, t.content_hash) for t in minted.tokens] == [
        (to, "0x" + h.hex()) for to, h in zip(recipients, hashes)
    ]
    assert len({t.log_index for t in minted.tokens}) == 5
    assert minted.receipt.transaction_hash == sent.tx_hash and minted.receipt.removed is False
    assert minted.receipt.block_hash == chain.block_hash(minted.receipt.block_number)
    assert chain.nft_token(first_id + 4) == (recipients[4], "0x" + hashes[4].hex())
    assert (nft.functions.name().call(), nft.functions.symbol().call()) == ("Provsim Provenance", "PROV")
    assert nft.functions.tokenURI(first_id).call() == ""


def test_head_and_block_hash_follow_the_node(backend, chain):
    head = chain.head()
    assert head == backend.w3.eth.block_number
    assert chain.block_hash(head) == "0x" + backend.w3.eth.get_block(head)["hash"].hex()
    assert chain.block_hash(0) == chain.genesis_hash and chain.same_chain()
    assert chain.block_hash(head + 1000) is None
    assert chain.mine(2) == head + 2


def test_rebroadcast_of_a_mined_transaction_is_harmless(chain):
    sent = chain.send_anchor(fresh_root(), 3)
    receipt = wait_for(lambda: chain.receipt(sent.tx_hash))
    head = chain.head()
    assert chain.rebroadcast(sent.raw) == sent.tx_hash
    assert chain.head() == head and chain.receipt(sent.tx_hash) == receipt
    assert chain.transaction_known(sent.tx_hash)


def test_rebroadcast_of_a_transaction_whose_nonce_was_taken_raises_nonce_taken(backend, chain):
    sent = chain.send_anchor(fresh_root(), 1)
    wait_for(lambda: chain.receipt(sent.tx_hash))
    rival = Account.from_key(backend.key).sign_transaction(
        {"chainId": chain.chain_id, "nonce": sent.nonce, "to": chain.address, "value": 1, "gas": 21_000,
         "gasPrice": 10**10}
    ).raw_transaction
    with pytest.raises(NonceTakenError, match=f"nonce {sent.nonce} of {chain.address} went to another"):
        chain.rebroadcast(bytes(rival))


def test_unknown_transactions_have_no_receipt(chain):
    unknown = "0x" + keccak(fresh_root()).hex()
    assert chain.receipt(unknown) is None and chain.mint_receipt(unknown) is None
    assert chain.transaction_known(unknown) is False


def test_a_port_nobody_listens_on_raises_chain_unavailable_naming_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(ChainUnavailableError) as failure:
        open_rpc(url, EMBEDDED_PRIVATE_KEY, network="nowhere")
    assert str(failure.value) == f"chain at {url} not answering: connection refused"
    assert time.monotonic() - started < 5


def test_a_node_that_never_answers_raises_chain_unavailable_after_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ChainUnavailableError) as failure:
            open_rpc(url, EMBEDDED_PRIVATE_KEY, network="silent", timeout=0.3)
    assert str(failure.value) == f"chain at {url} not answering: no answer within 0.3 s"


def test_a_node_restarted_with_its_state_is_the_same_chain(backend, tmp_path):
    if backend.node is None:
        pytest.skip("the embedded chain restarts by replaying its journal (test_embedded)")
    with start_node(backend.kind, state_path=tmp_path / "state") as node:
        chain = open_rpc(node.url, node.funded_key, network=backend.kind)
        chain.ensure_registry(None)
        first = chain.anchor(fresh_root(), 1)
        node.stop()
        node.restart()
        assert chain.same_chain()
        assert chain.receipt(first.transaction_hash) == first
        assert chain.anchor(fresh_root(), 1).block_number > first.block_number


def test_a_reorg_drops_the_anchor_and_rebroadcast_anchors_it_again(backend, chain):
    if backend.node is None:
        pytest.skip("the embedded chain never reorganises")
    snapshot = rpc(backend.node.url, "evm_snapshot") if backend.kind == "ganache" else None
    root = fresh_root()
    sent = chain.send_anchor(root, 4)
    first = wait_for(lambda: chain.receipt(sent.tx_hash))
    assert first.block_number == chain.head()
    chain.mine(1)
    reorg(backend.node, 2, snapshot)
    assert chain.head() == first.block_number + 1
    assert chain.block_hash(first.block_number) != first.block_hash
    assert chain.receipt(sent.tx_hash) is None and chain.transaction_known(sent.tx_hash) is False
    assert chain.anchor_of(root) is None
    assert chain.rebroadcast(sent.raw) == sent.tx_hash
    again = wait_for(lambda: chain.receipt(sent.tx_hash))
    assert again.block_hash != first.block_hash
    assert again.block_hash == chain.block_hash(again.block_number)
    assert chain.anchor_of(root)[1] == again.block_number
    assert chain.anchor(fresh_root(), 1).block_number == chain.head()


def test_a_crashed_node_restarted_without_state_is_seen_as_a_new_chain(backend, chain):
    if backend.node is None:
        pytest.skip("the embedded chain runs in process: it cannot crash apart from provsim")
    old = chain.send_anchor(fresh_root(), 1)
    wait_for(lambda: chain.receipt(old.tx_hash))
    backend.node.kill()
    with pytest.raises(ChainUnavailableError) as failure:
        chain.send_anchor(fresh_root(), 1)
    assert str(failure.value) == f"chain at {backend.node.url} not answering: connection refused"
    assert failure.value.sent is not None and failure.value.sent.nonce == old.nonce + 1
    with pytest.raises(ChainUnavailableError):
        chain.head()
    backend.node.restart()
    assert chain.same_chain() is False
    lost = chain.send_anchor(fresh_root(), 1)
    assert lost.nonce == 0
    with pytest.raises(ChainError, match="anchored nothing: no registry code"):
        wait_for(lambda: chain.receipt(lost.tx_hash))
    with pytest.raises(NonceGapError, match=f"nonce {old.nonce} but {chain.address} is at 1"):
        chain.rebroadcast(old.raw)
    deployment = chain.ensure_registry_verbose(chain.registry_address)
    assert deployment.deployed and deployment.reason.startswith("no code at")
    root = fresh_root()
    assert chain.anchor(root, 2).block_number == chain.head()
    assert chain.anchor_of(root) is not None
