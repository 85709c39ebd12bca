"""The narrow chain interface: deploy or reuse the contracts, send, confirm and re-send anchors and mints."""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import requests
import rlp
from eth_account import Account
from eth_utils import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound

from pipeline.registry import NFT_CONTRACT_NAME, Artifact, load_artifact

# anchor() costs the same for every root and count (about 69k gas), so no estimate per transaction.
ANCHOR_GAS_LIMIT = 100_000
DEPLOY_GAS_MARGIN = 1.2
MINT_GAS_MARGIN = 1.2
# A token costs 50.6k gas when all go to one owner, 72.5k to distinct owners: 256 tokens take at most
# 18.6M gas, inside a 30M block. Split larger batches.
MAX_MINT_BATCH = 256
RPC_TIMEOUT = 10.0
# Fees are read again after this many seconds; maxFeePerGas = 2 x base fee leaves room for it to rise.
FEE_REFRESH = 1.0
ANCHORED_TOPIC = keccak(text="Anchored(bytes32,uint256,address,uint256)")
MINTED_TOPIC = keccak(text="ProvenanceMinted(uint256,address,bytes32)")

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ChainError(Exception):
    """A chain operation failed; the message says what happened and what to do, in one line."""


class ChainUnavailableError(ChainError):
    """The node did not answer; `sent` is the signed transaction it may or may not have received."""

    def __init__(self, message: str, sent: "SentTx | None" = None) -> None:
        """Keep the transaction being sent, if any, next to the message."""
        super().__init__(message)
        self.sent = sent


class NonceTakenError(ChainError):
    """A transaction will not be mined: another transaction of the same account took its nonce."""


class NonceGapError(NonceTakenError):
    """A transaction will not be mined: the account's transactions before it are gone (a reset chain)."""


class AlreadyAnchoredError(ChainError):
    """The root was anchored before; `anchor` holds its (timestamp, block number, leaf count)."""

    def __init__(self, message: str, anchor: tuple[int, int, int]) -> None:
        """Keep the existing anchor next to the message."""
        super().__init__(message)
        self.anchor = anchor


@dataclass(frozen=True)
class SentTx:
    """A signed transaction handed to the node: keep `raw` to broadcast it again."""

    tx_hash: str
    nonce: int
    raw: bytes


@dataclass(frozen=True)
class AnchorReceipt:
    """Where one transaction landed; hashes are lowercase 0x-hex, log_index is its first event's."""

    transaction_hash: str
    block_hash: str
    block_number: int
    chain_id: int
    log_index: int
    transaction_index: int
    removed: bool
    gas_used: int


class MintedToken(NamedTuple):
    """One token of a batch mint: id, owner (checksummed), content hash (0x-hex) and event log index."""

    token_id: int
    to: str
    content_hash: str
    log_index: int


@dataclass(frozen=True)
class MintReceipt:
    """Where a batch mint landed (log_index: its first ProvenanceMinted event) and the tokens it made."""

    receipt: AnchorReceipt
    tokens: list[MintedToken]


@dataclass(frozen=True)
class Deployment:
    """The contract address in use, whether it was deployed just now, and why."""

    address: str
    deployed: bool
    reason: str


def _hex(value: bytes) -> str:
    """Lowercase 0x-hex of bytes."""
    return "0x" + bytes(value).hex()


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split())


def _nonce_of(raw: bytes) -> int:
    """The nonce of a raw signed transaction, legacy (RLP list) or typed (type byte, RLP list)."""
    legacy = raw[0] >= 0xC0
    fields = rlp.decode(raw if legacy else raw[1:])
    return int.from_bytes(fields[0 if legacy else 1], "big")


def _why(exc: requests.RequestException, timeout: float) -> str:
    """What went wrong talking to a node, in a few words."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if "refused" in str(exc).lower():
        return "connection refused"
    return _one_line(exc)


class _RpcProvider(HTTPProvider):
    """An HTTPProvider that never retries and turns every transport failure into ChainUnavailableError."""

    def __init__(self, url: str, timeout: float) -> None:
        """Talk to `url`, giving up on a request after `timeout` seconds."""
        super().__init__(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self._timeout = timeout
        self.outages = 0  # requests that found the node not answering; the node may have restarted since

    def make_request(self, method, params):
        """Send one JSON-RPC request; a refused, broken or timed-out connection is ChainUnavailableError."""
        try:
            return super().make_request(method, params)
        except requests.RequestException as exc:
            self.outages += 1
            raise ChainUnavailableError(
                f"chain at {self.endpoint_uri} not answering: {_why(exc, self._timeout)}"
            ) from exc


class Chain:
    """One EVM chain behind any web3 provider; transactions are signed locally and sent raw.

    Nonces: every send takes one lock, signs with a local nonce counter (seeded from the account's
    pending transaction count on the first send) and hands the transaction to the node; the counter
    moves on only when the node accepts it. When the node refuses a send and the chain's pending count
    differs from the nonce used (another sender took it, or the node lost transactions), the counter is
    reseeded from the chain and the send is signed again and retried once. After the node was found not
    answering (ChainUnavailableError, on any call), the next send reseeds the counter, since a node
    restarted without its state starts again from nonce 0. A reorg that drops transactions leaves the
    counter ahead of the chain: broadcast the dropped ones again (rebroadcast, in nonce order), which
    fills the gap. The counter is also reseeded by a rebroadcast that would leave a gap (it raises
    NonceGapError), by same_chain() when it finds the chain reset, and by resync_nonce(). Receipts are
    awaited outside the lock, so sends from many threads never share a nonce or wait for each other.
    """

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
        self._nft_artifact = load_artifact(NFT_CONTRACT_NAME)
        self._lock = threading.Lock()
        self._chain_id = w3.eth.chain_id
        self._genesis_hash = _hex(w3.eth.get_block(0)["hash"])
        self._eip1559 = "baseFeePerGas" in w3.eth.get_block("latest")
        self._priority_fee = w3.eth.max_priority_fee if self._eip1559 else 0
        self._nonce: int | None = None
        self._outages_seen = 0
        self._fee_cache: tuple[float, dict[str, int]] = (float("-inf"), {})
        self._registry: Contract | None = None
        self._nft: Contract | None = None

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
        """Hash of block 0 when this Chain was opened, which tells one chain from another with the same id."""
        return self._genesis_hash

    @property
    def address(self) -> str:
        """Checksummed address of the account that signs and pays."""
        return self._account.address

    @property
    def registry_address(self) -> str | None:
        """Checksummed address of the bound registry, or None before ensure_registry()."""
        return None if self._registry is None else self._registry.address

    @property
    def nft_address(self) -> str | None:
        """Checksummed address of the bound NFT contract, or None before ensure_nft()."""
        return None if self._nft is None else self._nft.address

    # blocks ----------------------------------------------------------------------

    def block_number(self) -> int:
        """Number of the latest block (the same as head())."""
        return self.head()

    def head(self) -> int:
        """Number of the latest block."""
        return self._w3.eth.block_number

    def block_hash(self, number: int) -> str | None:
        """Hash of the canonical block at height `number`, or None above the head."""
        try:
            return _hex(self._w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def same_chain(self) -> bool:
        """False once the node has another genesis or lost the bound contracts; then the nonce is reseeded."""
        bound = [c for c in (self._registry, self._nft) if c is not None]
        same = self.block_hash(0) == self._genesis_hash
        same = same and all(self._w3.eth.get_code(c.address) for c in bound)
        if not same:
            with self._lock:
                self._nonce = None
        return same

    def mine(self, blocks: int = 1) -> int:
        """Mine `blocks` empty blocks (evm_mine) on a development chain; return the new head."""
        for _ in range(blocks):
            response = self._w3.provider.make_request("evm_mine", [])
            if "error" in response:
                raise ChainError(
                    f"{self._network} does not mine on request ({response['error']}); wait for its"
                    " own blocks instead"
                )
        return self.head()

    # contracts -------------------------------------------------------------------

    def ensure_registry(self, known_address: str | None) -> str:
        """Reuse the registry at `known_address` if its code is ours, else deploy one; return it."""
        return self.ensure_registry_verbose(known_address).address

    def ensure_registry_verbose(self, known_address: str | None) -> Deployment:
        """ensure_registry, also saying whether it deployed and why (a wrong known address is logged)."""
        deployment = self._ensure(self._artifact, known_address, owned=False)
        self._registry = self._w3.eth.contract(address=deployment.address, abi=self._artifact.abi)
        return deployment

    def ensure_nft(self, known_address: str | None) -> str:
        """Reuse the NFT contract at `known_address` if its code is ours and we own it, else deploy one."""
        return self.ensure_nft_verbose(known_address).address

    def ensure_nft_verbose(self, known_address: str | None) -> Deployment:
        """ensure_nft, also saying whether it deployed and why (a wrong known address is logged)."""
        deployment = self._ensure(self._nft_artifact, known_address, owned=True)
        self._nft = self._w3.eth.contract(address=deployment.address, abi=self._nft_artifact.abi)
        return deployment

    # anchors ---------------------------------------------------------------------

    def anchor(self, root: bytes, leaf_count: int) -> AnchorReceipt:
        """Anchor a batch root and wait for its receipt; raise ChainError if it reverts."""
        sent = self.send_anchor(root, leaf_count)
        return self._await(lambda: self.receipt(sent.tx_hash), sent.tx_hash)

    def send_anchor(self, root: bytes, leaf_count: int) -> SentTx:
        """Sign and send the anchor of a batch root without waiting for it to be mined."""
        if len(root) != 32 or not any(root):
            raise ChainError(f"cannot anchor root {_hex(root)}: need 32 bytes, not all zero")
        if leaf_count <= 0:
            raise ChainError(
                f"cannot anchor root {_hex(root)} with {leaf_count} leaves: need at least 1"
            )
        registry = self._require_registry()
        data = registry.encode_abi("anchor", args=[root, leaf_count])
        return self._send({"to": registry.address, "data": data, "gas": ANCHOR_GAS_LIMIT})

    def receipt(self, tx_hash: str) -> AnchorReceipt | None:
        """The anchor's receipt once mined in a canonical block, else None; a revert raises ChainError."""
        registry = self._require_registry()
        mined = self._canonical_receipt(tx_hash)
        if mined is None:
            return None
        if mined["to"] != registry.address:
            raise ChainError(f"transaction {tx_hash} is not an anchor on the registry at {registry.address}")
        if mined["status"] != 1:
            call = self._w3.eth.get_transaction(tx_hash)
            _, args = registry.decode_function_input(call["input"])
            raise self._revert_error(args["root"], mined)
        log = next(
            (
                log
                for log in mined["logs"]
                if log["address"] == registry.address and log["topics"][0] == ANCHORED_TOPIC
            ),
            None,
        )
        if log is None:
            raise ChainError(
                f"transaction {tx_hash} was mined but anchored nothing: no registry code at"
                f" {registry.address} (a reset chain?); call ensure_registry and anchor again"
            )
        return self._receipt_of(mined, log)

    def find_anchor(self, root: bytes) -> AnchorReceipt | None:
        """The receipt of the transaction that anchored `root`, found by its event from block 0, or None."""
        registry = self._require_registry()
        logs = self._w3.eth.get_logs(
            {"address": registry.address, "fromBlock": 0, "topics": [_hex(ANCHORED_TOPIC), _hex(root)]}
        )
        return None if not logs else self.receipt(_hex(logs[0]["transactionHash"]))

    def anchor_of(self, root: bytes) -> tuple[int, int, int] | None:
        """(timestamp, block number, leaf count) of an anchored root, or None if not anchored."""
        timestamp, block_number, leaf_count = (
            self._require_registry().functions.anchorOf(root).call()
        )
        return None if timestamp == 0 else (timestamp, block_number, leaf_count)

    def verify_proof(self, root: bytes, proof: Sequence[bytes], leaf: bytes) -> bool:
        """The registry's own check: `root` is anchored and `proof` proves the leaf hash `leaf`."""
        return self._require_registry().functions.verify(root, list(proof), leaf).call()

    # NFTs ------------------------------------------------------------------------

    def send_mint(self, recipients: list[str], content_hashes: list[bytes]) -> SentTx:
        """Sign and send one mint of a token per (recipient, content hash), without waiting."""
        nft = self._require_nft()
        count = len(recipients)
        if count != len(content_hashes) or not 0 < count <= MAX_MINT_BATCH:
            raise ChainError(
                f"cannot mint {count} recipients with {len(content_hashes)} content hashes: need the"
                f" same number of each, 1 to {MAX_MINT_BATCH} per transaction"
            )
        bad = [h for h in content_hashes if len(h) != 32] + [a for a in recipients if not Web3.is_address(a)]
        if bad:
            raise ChainError(f"cannot mint {bad[0]!r}: need 20-byte addresses and 32-byte content hashes")
        to = [Web3.to_checksum_address(a) for a in recipients]
        fields = {"to": nft.address, "data": nft.encode_abi("mintBatch", args=[to, list(content_hashes)])}
        try:
            gas = self._w3.eth.estimate_gas({"from": self.address, **fields, **self._fees()})
        except ChainUnavailableError:
            raise
        except Exception as exc:
            raise ChainError(
                f"a mint of {count} tokens on {nft.address} would revert ({_one_line(exc)}); check that"
                f" {self.address} owns it (ensure_nft)"
            ) from exc
        return self._send({**fields, "gas": int(gas * MINT_GAS_MARGIN)})

    def mint_receipt(self, tx_hash: str) -> MintReceipt | None:
        """The mint's receipt and tokens once mined in a canonical block, else None; a revert raises."""
        nft = self._require_nft()
        mined = self._canonical_receipt(tx_hash)
        if mined is None:
            return None
        if mined["to"] != nft.address:
            raise ChainError(f"transaction {tx_hash} is not a mint on the NFT contract at {nft.address}")
        if mined["status"] != 1:
            raise ChainError(
                f"mint {tx_hash} reverted in block {mined['blockNumber']} (gas used"
                f" {mined['gasUsed']}); check that {self.address} owns {nft.address}, then mint again"
            )
        tokens = [
            MintedToken(
                token_id=int.from_bytes(log["topics"][1], "big"),
                to=Web3.to_checksum_address(log["topics"][2][-20:]),
                content_hash=_hex(log["data"]),
                log_index=log["logIndex"],
            )
            for log in mined["logs"]
            if log["address"] == nft.address and log["topics"][0] == MINTED_TOPIC
        ]
        if not tokens:
            raise ChainError(
                f"transaction {tx_hash} was mined but minted nothing: no NFT code at {nft.address}"
                " (a reset chain?); call ensure_nft and mint again"
            )
        first = next(log for log in mined["logs"] if log["logIndex"] == tokens[0].log_index)
        return MintReceipt(receipt=self._receipt_of(mined, first), tokens=tokens)

    def nft_token(self, token_id: int) -> tuple[str, str] | None:
        """(owner, content hash as 0x-hex) of a minted token, or None if it does not exist."""
        nft = self._require_nft()
        if not 0 < token_id < nft.functions.nextTokenId().call():
            return None
        owner = nft.functions.ownerOf(token_id).call()
        return owner, _hex(nft.functions.contentHashOf(token_id).call())

    # transactions ----------------------------------------------------------------

    def rebroadcast(self, raw: bytes) -> str:
        """Hand a signed transaction to the node again; known or already mined is fine; return its hash."""
        tx_hash = _hex(keccak(raw))
        if self.transaction_known(tx_hash):
            return tx_hash
        nonce, sender = _nonce_of(raw), Account.recover_transaction(raw)
        pending = self._w3.eth.get_transaction_count(sender, "pending")
        if nonce > pending:
            if sender == self.address:
                with self._lock:
                    self._nonce = pending
            raise NonceGapError(
                f"transaction {tx_hash} will not be mined: it has nonce {nonce} but {sender} is at"
                f" {pending}, the transactions between are gone (a reset chain?); sign a new one"
            )
        try:
            self._w3.eth.send_raw_transaction(raw)
        except ChainUnavailableError:
            raise
        except Exception as exc:
            if self.transaction_known(tx_hash):
                return tx_hash
            if nonce < self._w3.eth.get_transaction_count(sender, "pending"):
                raise NonceTakenError(
                    f"transaction {tx_hash} will not be mined: nonce {nonce} of {sender} went to another"
                    " transaction (mined or pending); sign a new one"
                ) from exc
            raise ChainError(
                f"{self._network} refused transaction {tx_hash} again: {_one_line(exc)}"
            ) from exc
        if sender == self.address:
            with self._lock:
                if self._nonce is not None and self._nonce <= nonce:
                    self._nonce = nonce + 1
        return tx_hash

    def transaction_known(self, tx_hash: str) -> bool:
        """True if the node has the transaction, pending or mined."""
        try:
            self._w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def resync_nonce(self) -> int:
        """Reseed the local nonce counter from the chain's pending count; return it."""
        with self._lock:
            self._nonce = self._pending_nonce()
            return self._nonce

    # internals -------------------------------------------------------------------

    def _ensure(self, artifact: Artifact, known: str | None, owned: bool) -> Deployment:
        """Reuse the contract at `known` if its runtime code is `artifact`'s (and we own it), else deploy."""
        name = artifact.contract_name
        if not known:
            reason = "no address known"
        elif not Web3.is_address(known):
            reason = f"{known!r} is not an address"
        else:
            address = Web3.to_checksum_address(known)
            code = _hex(self._w3.eth.get_code(address))
            contract = self._w3.eth.contract(address=address, abi=artifact.abi)
            if code == "0x":
                reason = f"no code at {address}"
            elif code != artifact.deployed_bytecode:
                reason = f"the code at {address} is not this {name} build"
            elif owned and (owner := contract.functions.owner().call()) != self.address:
                reason = f"the {name} at {address} is owned by {owner}, not by {self.address}"
            else:
                return Deployment(address, False, f"reused the {name} at {address}")
        address = self._deploy(artifact)
        if known:
            logger.warning("%s on %s: deployed a new %s at %s", reason, self._network, name, address)
        return Deployment(address, True, reason)

    def _deploy(self, artifact: Artifact) -> str:
        """Deploy `artifact`'s creation code and wait for it; return the new address."""
        gas = self._w3.eth.estimate_gas({"from": self.address, "data": artifact.bytecode, **self._fees()})
        sent = self._send({"data": artifact.bytecode, "gas": int(gas * DEPLOY_GAS_MARGIN)})
        mined = self._await(lambda: self._canonical_receipt(sent.tx_hash), sent.tx_hash)
        if mined["status"] != 1:
            raise ChainError(
                f"{artifact.contract_name} deployment {sent.tx_hash} reverted on {self._network};"
                " check the account's balance and the chain's EVM version"
            )
        return mined["contractAddress"]

    def _require_registry(self) -> Contract:
        """The bound registry contract, or a ChainError saying to call ensure_registry first."""
        if self._registry is None:
            raise ChainError("no registry bound on this chain: call ensure_registry() first")
        return self._registry

    def _require_nft(self) -> Contract:
        """The bound NFT contract, or a ChainError saying to call ensure_nft first."""
        if self._nft is None:
            raise ChainError("no NFT contract bound on this chain: call ensure_nft() first")
        return self._nft

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fee fields when the chain has a base fee, else a legacy gas price; read once a second."""
        read_at, fees = self._fee_cache
        if time.monotonic() - read_at < FEE_REFRESH:
            return fees
        if not self._eip1559:
            fees = {"gasPrice": self._w3.eth.gas_price}
        else:
            base_fee = self._w3.eth.get_block("latest")["baseFeePerGas"]
            fees = {
                "type": 2,
                "maxFeePerGas": 2 * base_fee + self._priority_fee,
                "maxPriorityFeePerGas": self._priority_fee,
            }
        self._fee_cache = (time.monotonic(), fees)
        return fees

    def _pending_nonce(self) -> int:
        """The account's transaction count including pending transactions, as the node sees it."""
        return self._w3.eth.get_transaction_count(self._account.address, "pending")

    def _send(self, fields: dict) -> SentTx:
        """Sign `fields` with the next local nonce and send raw, under the nonce rule of the class."""
        fees = self._fees()
        retried = False
        with self._lock:
            while True:
                outages = getattr(self._w3.provider, "outages", 0)
                if self._nonce is None or outages != self._outages_seen:
                    self._nonce, self._outages_seen = self._pending_nonce(), outages
                tx = {"chainId": self._chain_id, "nonce": self._nonce, "value": 0, **fees, **fields}
                signed = self._account.sign_transaction(tx)
                sent = SentTx(_hex(signed.hash), self._nonce, bytes(signed.raw_transaction))
                try:
                    self._w3.eth.send_raw_transaction(sent.raw)
                except ChainUnavailableError as exc:
                    raise ChainUnavailableError(str(exc), sent) from exc
                except Exception as exc:
                    self._nonce = self._pending_nonce()
                    if not retried and self._nonce != sent.nonce:
                        retried = True
                        continue
                    raise ChainError(
                        f"{self._network} refused the transaction: {_one_line(exc)}; check the node"
                        f" and the balance of {self._account.address}"
                    ) from exc
                self._nonce = sent.nonce + 1
                return sent

    def _canonical_receipt(self, tx_hash: str) -> dict | None:
        """The node's receipt of a transaction if its block is canonical, else None."""
        try:
            mined = self._w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        if self.block_hash(mined["blockNumber"]) != _hex(mined["blockHash"]):
            return None
        return mined

    def _await(self, fetch: Callable[[], T | None], tx_hash: str) -> T:
        """Poll `fetch` every few milliseconds (backing off to 20 ms) until it gives a value or time is up."""
        deadline = time.monotonic() + self._receipt_timeout
        interval = 0.002
        while (result := fetch()) is None:
            if time.monotonic() > deadline:
                raise ChainError(
                    f"no receipt for {tx_hash} after {self._receipt_timeout:.0f} s on"
                    f" {self._network}; is the node mining?"
                )
            time.sleep(interval)
            interval = min(interval * 1.5, 0.02)
        return result

    def _receipt_of(self, mined: dict, log: dict) -> AnchorReceipt:
        """An AnchorReceipt of a mined transaction, with `log` as its event."""
        return AnchorReceipt(
            transaction_hash=_hex(mined["transactionHash"]),
            block_hash=_hex(mined["blockHash"]),
            block_number=mined["blockNumber"],
            chain_id=self._chain_id,
            log_index=log["logIndex"],
            transaction_index=mined["transactionIndex"],
            removed=bool(log.get("removed", False)),
            gas_used=mined["gasUsed"],
        )

    def _revert_error(self, root: bytes, mined: dict) -> ChainError:
        """The error for a reverted anchor transaction, saying why and what to do."""
        where = f"transaction {_hex(mined['transactionHash'])} in block {mined['blockNumber']}"
        existing = self.anchor_of(root)
        if existing is not None:
            return AlreadyAnchoredError(
                f"root {_hex(root)} is already anchored (block {existing[1]}); {where} reverted:"
                " use the existing anchor (anchor_of, find_anchor) instead",
                existing,
            )
        return ChainError(
            f"anchor of root {_hex(root)} reverted: {where}, gas used {mined['gasUsed']}"
            f" of {ANCHOR_GAS_LIMIT}; check the registry address and the account's balance"
        )


def open_rpc(url: str, private_key: str, network: str, timeout: float = RPC_TIMEOUT) -> Chain:
    """A Chain on the node at `url` (HTTP JSON-RPC), failing fast with ChainUnavailableError."""
    return Chain(Web3(_RpcProvider(url, timeout)), private_key, network=network)
