"""Fixtures for the chain tests: an embedded py-evm chain with the registry deployed."""

import ast
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_tester import EthereumTester
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from pipeline.chain import Chain
from pipeline.embedded import EMBEDDED_PRIVATE_KEY, JournalledBackend, ListJournal
from pipeline.registry import load_artifact


@pytest.fixture
def journal() -> ListJournal:
    """An empty in-memory journal."""
    return ListJournal()


@pytest.fixture
def w3(journal: ListJournal) -> Web3:
    """Web3 over a fresh embedded chain that journals into `journal`."""
    return Web3(EthereumTesterProvider(EthereumTester(JournalledBackend(journal))))


@pytest.fixture
def chain(w3: Web3) -> Chain:
    """A Chain over `w3` with the ProvenanceRegistry deployed."""
    chain = Chain(w3, EMBEDDED_PRIVATE_KEY, network="embedded")
    chain.ensure_registry(None)
    return chain


@pytest.fixture
def registry(chain: Chain, w3: Web3) -> Contract:
    """The deployed registry as a web3 contract, for calls that bypass Chain's own checks."""
    return w3.eth.contract(address=chain.registry_address, abi=load_artifact().abi)


@pytest.fixture
def send_raw(w3: Web3) -> Callable[[str, str], dict]:
    """Sign and send one transaction from the embedded account, with no pre-checks; get its receipt."""

    def send(to: str, data: str) -> dict:
        account = Account.from_key(EMBEDDED_PRIVATE_KEY)
        tx = {
            "chainId": w3.eth.chain_id,
            "nonce": w3.eth.get_transaction_count(account.address),
            "to": to,
            "data": data,
            "gas": 100_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "value": 0,
        }
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        return w3.eth.get_transaction_receipt(tx_hash)

    return send


@pytest.fixture
def revert_data(w3: Web3) -> Callable[[str, str], bytes]:
    """The revert data of an eth_call that must revert (eth-tester gives it as a bytes repr)."""

    def call(to: str, data: str) -> bytes:
        with pytest.raises(TransactionFailed) as failure:
            w3.eth.call({"to": to, "data": data})
        return ast.literal_eval(str(failure.value.args[0]).removeprefix("execution reverted: "))

    return call
