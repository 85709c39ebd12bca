"""ProvenanceNFT.sol and Chain's mints on a real py-evm chain: ids, events, owner only, replay, Shanghai."""

import ast

import pytest
from eth.vm.forks import ShanghaiVM
from eth_abi import encode
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD

from pipeline.chain import MAX_MINT_BATCH, Chain, ChainError, MintedToken
from pipeline.embedded import EMBEDDED_PRIVATE_KEY, ListJournal, open_embedded
from pipeline.registry import NFT_CONTRACT_NAME, load_artifact

OTHER_KEY = "0x" + "00" * 31 + "02"  # eth-tester's second funded account
ALICE = Web3.to_checksum_address("0x" + "a1" * 20)
BOB = Web3.to_checksum_address("0x" + "b2" * 20)


def content(n: int) -> bytes:
    """A distinct 32-byte content hash."""
    return keccak(n.to_bytes(4, "big"))


def selector(signature: str) -> bytes:
    """First four bytes of keccak256 of an error signature."""
    return keccak(text=signature)[:4]


@pytest.fixture
def nft(chain: Chain, w3: Web3) -> Contract:
    """The ProvenanceNFT deployed by `chain`, as a web3 contract."""
    chain.ensure_nft(None)
    return w3.eth.contract(address=chain.nft_address, abi=load_artifact(NFT_CONTRACT_NAME).abi)


def call_revert(w3: Web3, sender: str, to: str, data: str) -> bytes:
    """The revert data of an eth_call from `sender` that must revert."""
    with pytest.raises(TransactionFailed) as failure:
        w3.eth.call({"from": sender, "to": to, "data": data})
    return ast.literal_eval(str(failure.value.args[0]).removeprefix("execution reverted: "))


def test_metadata_owner_and_interfaces(chain, nft):
    assert (nft.functions.name().call(), nft.functions.symbol().call()) == ("Provsim Provenance", "PROV")
    assert nft.functions.owner().call() == chain.address
    assert nft.functions.nextTokenId().call() == 1
    for interface in ("0x80ac58cd", "0x5b5e139f", "0x01ffc9a7"):  # ERC-721, metadata, ERC-165
        assert nft.functions.supportsInterface(bytes.fromhex(interface[2:])).call() is True


def test_mint_batch_counts_up_from_one_with_both_events_per_token(chain, nft, w3):
    sent = chain.send_mint([ALICE, BOB, ALICE], [content(1), content(2), content(3)])
    minted = chain.mint_receipt(sent.tx_hash)
    assert [t[:3] for t in minted.tokens] == [
        (1, ALICE, "0x" + content(1).hex()),
        (2, BOB, "0x" + content(2).hex()),
        (3, ALICE, "0x" + content(3).hex()),
    ]
    receipt = w3.eth.get_transaction_receipt(sent.tx_hash)
    transfers = nft.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [(e.args["from"], e.args["to"], e.args["tokenId"]) for e in transfers] == [
        ("0x" + "00" * 20, ALICE, 1),
        ("0x" + "00" * 20, BOB, 2),
        ("0x" + "00" * 20, ALICE, 3),
    ]
    events = nft.events.ProvenanceMinted().process_receipt(receipt, errors=DISCARD)
    expected = [(t.token_id, t.log_index) for t in minted.tokens]
    assert [(e.args["tokenId"], e.logIndex) for e in events] == expected
    assert minted.receipt.log_index == minted.tokens[0].log_index == transfers[0].logIndex + 1
    assert minted.receipt.transaction_hash == sent.tx_hash and minted.receipt.gas_used == receipt["gasUsed"]
    assert nft.functions.balanceOf(ALICE).call() == 2 and nft.functions.ownerOf(2).call() == BOB
    assert nft.functions.contentHashOf(3).call() == content(3)
    assert nft.functions.tokenURI(1).call() == ""
    assert chain.nft_token(2) == (BOB, "0x" + content(2).hex())
    again = chain.mint_receipt(chain.send_mint([BOB], [content(4)]).tx_hash)
    assert again.tokens == [MintedToken(4, BOB, "0x" + content(4).hex(), again.tokens[0].log_index)]
    assert nft.functions.nextTokenId().call() == 5


def test_missing_tokens_revert_with_nonexistent_token(chain, nft, w3):
    expected = selector("ERC721NonexistentToken(uint256)") + encode(["uint256"], [7])
    for data in (nft.encode_abi("contentHashOf", args=[7]), nft.encode_abi("tokenURI", args=[7])):
        assert call_revert(w3, chain.address, nft.address, data) == expected
    assert chain.nft_token(7) is None and chain.nft_token(0) is None


def test_only_the_owner_mints(chain, nft, w3):
    other = Account.from_key(OTHER_KEY).address
    data = nft.encode_abi("mintBatch", args=[[ALICE], [content(1)]])
    expected = selector("OwnableUnauthorizedAccount(address)") + encode(["address"], [other])
    assert call_revert(w3, other, nft.address, data) == expected


def test_mint_batch_rejects_mismatched_and_empty_lists(chain, nft, w3):
    mismatched = nft.encode_abi("mintBatch", args=[[ALICE, BOB], [content(1)]])
    expected = selector("LengthMismatch(uint256,uint256)") + encode(["uint256", "uint256"], [2, 1])
    assert call_revert(w3, chain.address, nft.address, mismatched) == expected
    empty = nft.encode_abi("mintBatch", args=[[], []])
    assert call_revert(w3, chain.address, nft.address, empty) == selector("EmptyBatch()")


@pytest.mark.parametrize(
    ("recipients", "hashes", "message"),
    [
        ([ALICE, BOB], [content(1)], "same number of each"),
        ([], [], "1 to 256 per transaction"),
        ([ALICE] * (MAX_MINT_BATCH + 1), [content(1)] * (MAX_MINT_BATCH + 1), "1 to 256"),
        ([ALICE], [content(1)[:31]], "32-byte content hashes"),
        (["0x1234"], [content(1)], "'0x1234'"),
    ],
)
def test_send_mint_refuses_bad_arguments_before_sending(chain, nft, recipients, hashes, message):
    head = chain.head()
    with pytest.raises(ChainError, match=message):
        chain.send_mint(recipients, hashes)
    assert chain.head() == head


def test_mints_need_ensure_nft_first(chain):
    with pytest.raises(ChainError, match=r"call ensure_nft\(\) first"):
        chain.send_mint([ALICE], [content(1)])
    with pytest.raises(ChainError, match=r"call ensure_nft\(\) first"):
        chain.mint_receipt("0x" + "00" * 32)


def test_a_mint_that_would_revert_is_refused_and_a_foreign_nft_is_not_reused(chain, nft, w3):
    head = chain.head()
    account = Account.from_key(EMBEDDED_PRIVATE_KEY)
    other = Account.from_key(OTHER_KEY).address
    tx = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(account.address),
        "to": nft.address,
        "data": nft.encode_abi("transferOwnership", args=[other]),
        "gas": 100_000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
    }
    w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    with pytest.raises(ChainError, match="would revert.*check that .* owns it"):
        chain.send_mint([ALICE], [content(2)])
    assert chain.head() == head + 1
    deployment = chain.ensure_nft_verbose(nft.address)
    assert deployment.deployed and deployment.address != nft.address
    assert deployment.reason == (
        f"the ProvenanceNFT at {nft.address} is owned by {other}, not by {chain.address}"
    )


def test_mints_are_journalled_and_replay_to_the_same_tokens():
    journal = ListJournal()
    chain = open_embedded(journal)
    chain.ensure_registry(None)
    address = chain.ensure_nft(None)
    minted = chain.mint_receipt(chain.send_mint([ALICE, BOB], [content(1), content(2)]).tx_hash)
    replayed = open_embedded(ListJournal(list(journal.items)))
    reuse = replayed.ensure_nft_verbose(address)
    assert (reuse.address, reuse.deployed) == (address, False)
    assert replayed.mint_receipt(minted.receipt.transaction_hash) == minted
    assert [replayed.nft_token(n) for n in (1, 2)] == [chain.nft_token(n) for n in (1, 2)]


def test_nft_works_on_a_shanghai_chain_like_ganache():
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(vm_configuration=((0, ShanghaiVM),)))))
    chain = Chain(w3, EMBEDDED_PRIVATE_KEY, network="shanghai")
    nft = w3.eth.contract(address=chain.ensure_nft(None), abi=load_artifact(NFT_CONTRACT_NAME).abi)
    minted = chain.mint_receipt(chain.send_mint([ALICE, BOB], [content(1), content(2)]).tx_hash)
    assert [t.token_id for t in minted.tokens] == [1, 2]
    assert (nft.functions.name().call(), nft.functions.symbol().call()) == ("Provsim Provenance", "PROV")
    assert nft.functions.tokenURI(2).call() == ""
    assert nft.functions.contentHashOf(2).call() == content(2)
