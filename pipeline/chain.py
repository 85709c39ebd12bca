"""The narrow chain interface: deploy or reuse the ProvenanceRegistry, anchor roots, read anchors."""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from pipeline.registry import load_artifact

# anchor() costs the same for every root and count (about 69k gas), so no estimate per transaction.
ANCHOR_GAS_LIMIT = 100_000
DEPLOY_GAS_MARGIN = 1.2
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,uint256,address,uint256)")


class ChainError(Exception):
    """A chain operation failed; the message says what happened and what to do, in one line."""


class AlreadyAnchoredError(ChainError):
    """The root was anchored before; `anchor` holds its (timestamp, block number, leaf count)."""

    def __init__(self, message: str, anchor: tuple[int, int, int]) -> None:
        """Keep the existing anchor next to the message."""
        super().__init__(message)
        self.anchor = anchor


@dataclass(frozen=True)
class AnchorReceipt:
    """Where one anchor transaction landed; hashes are lowercase 0x-hex."""

    transaction_hash: str
    block_hash: str
    block_number: int
    chain_id: int
    log_index: int
    transaction_index: int
    removed: bool
    gas_used: int


def _hex(value: bytes) -> str:
    """Lowercase 0x-hex of bytes."""
    return "0x" + bytes(value).hex()


class Chain:
    """One EVM chain behind any web3 provider; transactions are signed locally and sent raw."""

    def __init__(
        self,
        w3: Web3,
        private_key: str | bytes,
        network: str,
        receipt_timeout: float = 120.0,
    ) -> None:
        """Bind to `w3` with the funded `private_key`; `network` names the chain in records."""
        self._w3 = w3
        self._account = Account.from_key(private_key)
        self._network = network
        self._receipt_timeout = receipt_timeout
        self._artifact = load_artifact()
        self._lock = threading.Lock()
        self._chain_id = w3.eth.chain_id
        self._genesis_hash = _hex(w3.eth.get_block(0)["hash"])
        self._eip1559 = "baseFeePerGas" in w3.eth.get_block("latest")
        self._priority_fee = w3.eth.max_priority_fee if self._eip1559 else 0
        self._nonce = w3.eth.get_transaction_count(self._account.address, "pending")
        self._registry = None

    @property
    def chain_id(self) -> int:
        """The chain id the transactions are signed for."""
        return self._chain_id

    @property
    def network(self) -> str:
        """The network's name: "embedded" for the in-process chain, else as given."""
        return self._network

    @property
    def genesis_hash(self) -> str:
        """Hash of block 0, which tells one chain from another with the same id."""
        return self._genesis_hash

    @property
    def address(self) -> str:
        """Checksummed address of the account that signs and pays."""
        return self._account.address

    @property
    def registry_address(self) -> str | None:
        """Checksummed address of the bound registry, or None before ensure_registry()."""
        return None if self._registry is None else self._registry.address

    def block_number(self) -> int:
        """Number of the latest block."""
        return self._w3.eth.block_number

    def ensure_registry(self, known_address: str | None) -> str:
        """Reuse the registry at `known_address` if its code is ours, else deploy one; return it."""
        with self._lock:
            if known_address and Web3.is_address(known_address):
                address = Web3.to_checksum_address(known_address)
                if _hex(self._w3.eth.get_code(address)) == self._artifact.deployed_bytecode:
                    self._bind(address)
                    return address
            deploy = {"data": self._artifact.bytecode, **self._fees()}
            gas = self._w3.eth.estimate_gas({"from": self._account.address, **deploy})
            receipt = self._transact({**deploy, "gas": int(gas * DEPLOY_GAS_MARGIN)})
            if receipt["status"] != 1:
                raise ChainError(
                    f"registry deployment {_hex(receipt['transactionHash'])} reverted on"
                    f" {self._network}; check the account's balance and the chain's EVM version"
                )
            self._bind(receipt["contractAddress"])
            return receipt["contractAddress"]

    def anchor(self, root: bytes, leaf_count: int) -> AnchorReceipt:
        """Anchor a batch root with one transaction; raise ChainError if it reverts."""
        if len(root) != 32 or not any(root):
            raise ChainError(f"cannot anchor root {_hex(root)}: need 32 bytes, not all zero")
        if leaf_count <= 0:
            raise ChainError(
                f"cannot anchor root {_hex(root)} with {leaf_count} leaves: need at least 1"
            )
        registry = self._require_registry()
        with self._lock:
            receipt = self._transact(
                {
                    "to": registry.address,
                    "data": registry.encode_abi("anchor", args=[root, leaf_count]),
                    "gas": ANCHOR_GAS_LIMIT,
                }
            )
        if receipt["status"] != 1:
            raise self._revert_error(root, receipt)
        log = next(
            entry
            for entry in receipt["logs"]
            if entry["address"] == registry.address and entry["topics"][0] == ANCHORED_TOPIC
        )
        return AnchorReceipt(
            transaction_hash=_hex(receipt["transactionHash"]),
            block_hash=_hex(receipt["blockHash"]),
            block_number=receipt["blockNumber"],
            chain_id=self._chain_id,
            log_index=log["logIndex"],
            transaction_index=receipt["transactionIndex"],
            removed=bool(log.get("removed", False)),
            gas_used=receipt["gasUsed"],
        )

    def anchor_of(self, root: bytes) -> tuple[int, int, int] | None:
        """(timestamp, block number, leaf count) of an anchored root, or None if not anchored."""
        timestamp, block_number, leaf_count = (
            self._require_registry().functions.anchorOf(root).call()
        )
        return None if timestamp == 0 else (timestamp, block_number, leaf_count)

    def verify_proof(self, root: bytes, proof: Sequence[bytes], leaf: bytes) -> bool:
        """The registry's own check: `root` is anchored and `proof` proves the leaf hash `leaf`."""
        return self._require_registry().functions.verify(root, list(proof), leaf).call()

    def _bind(self, address: str) -> None:
        """Point the contract calls at the registry deployed at `address`."""
        self._registry = self._w3.eth.contract(address=address, abi=self._artifact.abi)

    def _require_registry(self) -> Contract:
        """The bound registry contract, or a ChainError saying to call ensure_registry first."""
        if self._registry is None:
            raise ChainError("no registry bound on this chain: call ensure_registry() first")
        return self._registry

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fee fields when the chain has a base fee, else a legacy gas price."""
        if not self._eip1559:
            return {"gasPrice": self._w3.eth.gas_price}
        base_fee = self._w3.eth.get_block("latest")["baseFeePerGas"]
        return {
            "type": 2,
            "maxFeePerGas": 2 * base_fee + self._priority_fee,
            "maxPriorityFeePerGas": self._priority_fee,
        }

    def _transact(self, fields: dict) -> dict:
        """Sign `fields` at current fees with the next local nonce, send raw, await the receipt."""
        tx = {"chainId": self._chain_id, "nonce": self._nonce, "value": 0, **self._fees(), **fields}
        raw = self._account.sign_transaction(tx).raw_transaction
        try:
            tx_hash = self._w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            self._nonce = self._w3.eth.get_transaction_count(self._account.address, "pending")
            reason = " ".join(str(exc).split())
            raise ChainError(
                f"{self._network} refused the transaction: {reason}; check the node and the"
                f" balance of {self._account.address}"
            ) from exc
        self._nonce += 1
        return self._wait_for_receipt(tx_hash)

    def _wait_for_receipt(self, tx_hash: bytes) -> dict:
        """Poll for the receipt every few milliseconds (backing off to 20 ms) until the timeout."""
        deadline = time.monotonic() + self._receipt_timeout
        interval = 0.002
        while True:
            try:
                return self._w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise ChainError(
                        f"no receipt for {_hex(tx_hash)} after {self._receipt_timeout:.0f} s on"
                        f" {self._network}; is the node mining?"
                    ) from None
                time.sleep(interval)
                interval = min(interval * 1.5, 0.02)

    def _revert_error(self, root: bytes, receipt: dict) -> ChainError:
        """The error for a reverted anchor transaction, saying why and what to do."""
        where = f"transaction {_hex(receipt['transactionHash'])} in block {receipt['blockNumber']}"
        existing = self.anchor_of(root)
        if existing is not None:
            return AlreadyAnchoredError(
                f"root {_hex(root)} is already anchored (block {existing[1]}); {where} reverted:"
                " use the existing anchor (anchor_of) instead",
                existing,
            )
        return ChainError(
            f"anchor of root {_hex(root)} reverted: {where}, gas used {receipt['gasUsed']}"
            f" of {ANCHOR_GAS_LIMIT}; check the registry address and the account's balance"
        )
