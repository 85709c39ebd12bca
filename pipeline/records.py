"""Domain records of the provenance service: registered content and Merkle batches."""
from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from .signing import content_hash_message, signing_message

NO_SHA256 = "0x" + "00" * 32  # the leaf's SHA-256 of a registration by content hash alone


@dataclass(frozen=True)
class Signer:
    """Who signed a record: the organisation and the key it used."""

    org_name: str
    org_type: str
    key_name: str
    key_id: str
    public_key_hex: str


@dataclass(frozen=True)
class Party:
    """A Royal account: its id as a decimal string, and its username."""

    number: str
    username: str


@dataclass(frozen=True)
class Record:
    """One registered piece of content, as stored."""

    # sha256, size and perceptual_hash are None for a registration by content hash (BLAKE3) alone.
    # tenant is the API account that registered it; None for the operator's own (CLI) registrations.

    id: str
    sha256: str | None
    blake3: str
    size: int | None
    perceptual_hash: str | None
    phash_reason: str | None
    mime: str
    original_filename: str
    source: str
    origin_type: str
    signed_at: str
    signature_hex: str
    signer: Signer
    context: dict | None
    batch_id: str | None
    leaf_index: int | None
    blockchain_status: str
    originator: Party = Party("1", "provsim")
    registrar: Party = Party("1", "provsim")
    extended: bool = False  # registered through the API: Royal's extended events apply
    tenant: str | None = None

    def signed_message(self) -> bytes:
        """The bytes the record's signature covers (the content-hash form when there is no SHA-256)."""
        if self.sha256 is None:
            return content_hash_message(self.blake3, self.signed_at, self.signer.key_id)
        return signing_message(self.sha256, self.perceptual_hash, self.signed_at, self.signer.key_id)

    def leaf_values(self) -> tuple[str, str, str]:
        """The Merkle leaf values: sha256 (zero without one), BLAKE3 and keccak256 of the signature (0x-hex)."""
        return (
            NO_SHA256 if self.sha256 is None else "0x" + self.sha256,
            "0x" + self.blake3,
            "0x" + keccak(bytes.fromhex(self.signature_hex)).hex(),
        )


@dataclass(frozen=True)
class Batch:
    """A closed Merkle batch and, once anchored, its on-chain receipt."""

    id: str
    merkle_root: str
    leaf_count: int
    status: str
    created_at: str
    tx_hash: str | None = None
    block_hash: str | None = None
    block_number: int | None = None
    chain_id: int | None = None
    log_index: int | None = None
    transaction_index: int | None = None
    network: str | None = None
    gas_used: int | None = None


@dataclass(frozen=True)
class ChainTx:
    """A transaction provsim sent for a batch (an anchor or a mint) and where it stands."""

    id: int | None
    kind: str
    batch_id: str
    tx_hash: str
    nonce: int
    raw_tx: bytes
    status: str
    chain_id: int
    submitted_at: float
    block_hash: str | None = None
    block_number: int | None = None
    log_index: int | None = None
    transaction_index: int | None = None
    gas_used: int | None = None
    confirmed_at: float | None = None
    removed_at: float | None = None
