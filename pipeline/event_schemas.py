"""JSON Schemas of every webhook body of both dialects, as Pydantic models following the seed documents."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import royal_events, tectra_events


class _Exact(BaseModel):
    """A JSON object with exactly these keys: no others allowed."""

    model_config = ConfigDict(extra="forbid")


# Tectra ------------------------------------------------------------------------------------------


class TectraSigner(_Exact):
    """Who signed: organisation name and type, and the key's name."""

    org_name: str
    org_type: str
    key_name: str


class ContentSignedData(_Exact):
    """`content.signed` data."""

    record_id: str = Field(description="The record's id (a UUID).")
    sha256: str = Field(description="SHA-256 of the content, 64 lowercase hex digits.")
    perceptual_hash: str | None = Field(description="64-bit pHash as 16 hex digits; null when the content has none.")
    signature_hex: str = Field(description="Ed25519 signature (128 hex digits) over the documented message.")
    original_filename: str
    origin_type: str = Field(description="camera_image, digital_image, video, audio, document or other.")
    signer: TectraSigner
    blockchain_status: str = Field(description="pending until the record's batch is anchored.")


class BatchAnchoredData(_Exact):
    """`batch.anchored` data."""

    batch_id: str
    merkle_root: str = Field(description="0x + 64 hex digits: the OpenZeppelin StandardMerkleTree root.")
    leaf_count: int
    tx_hash: str
    block_number: int
    network: str
    record_ids: list[str] = Field(description="The batch's records this endpoint may hear about.")


class Check(_Exact):
    """One verification check: passed or not, and why."""

    passed: bool
    details: str


class Checks(_Exact):
    """Tectra's four checks."""

    watermark: Check
    sha256: Check
    perceptual_hash: Check
    blockchain: Check


class VerifiedSigner(_Exact):
    """The matched record's signer."""

    org_name: str
    org_type: str


class ContentVerifiedData(_Exact):
    """`content.verified` data."""

    authentic: bool = Field(description="At least 2 of the 4 checks passed.")
    confidence: float = Field(description="Checks passed / 4.")
    record_id: str | None = Field(description="The matched record; null when nothing matched.")
    checks: Checks
    signer: VerifiedSigner | None = Field(description="The matched record's signer; null when nothing matched.")


class _TectraEvent(_Exact):
    """Tectra's envelope: event name, ISO 8601 timestamp, data."""

    timestamp: str = Field(description="ISO 8601 time of the event, e.g. 2025-06-14T09:32:00Z.")


class ContentSigned(_TectraEvent):
    """The body of a `content.signed` delivery."""

    event: Literal["content.signed"]
    data: ContentSignedData


class BatchAnchored(_TectraEvent):
    """The body of a `batch.anchored` delivery."""

    event: Literal["batch.anchored"]
    data: BatchAnchoredData


class ContentVerified(_TectraEvent):
    """The body of a `content.verified` delivery."""

    event: Literal["content.verified"]
    data: ContentVerifiedData


# Royal -------------------------------------------------------------------------------------------


class Party(_Exact):
    """A Royal account: its id as a decimal string, and its username."""

    number: str = Field(description="Royal ID as a decimal string.")
    username: str


class ContentHash(_Exact):
    """The provenance known once the content is hashed."""

    content_hash: str = Field(description="BLAKE3 of the content, 64 lowercase hex digits.")


class Provenance(ContentHash):
    """A registration with its id, originator and registrar."""

    id: str
    originator: Party
    registrar: Party


class Nft(_Exact):
    """The NFT attached to a registration."""

    address: str = Field(description="The NFT contract's address.")
    id: str = Field(description="Token id as a decimal string.")


class ProvenanceWithNft(Provenance):
    """A registration and its NFT."""

    nft: Nft


class TransactionHash(_Exact):
    """A transaction known by its hash only (submitted, not mined yet)."""

    transaction_hash: str


class Transaction(TransactionHash):
    """A mined transaction: every receipt field, and removed once its block left the chain."""

    block_hash: str
    block_number: int
    chain_id: int
    log_index: int
    transaction_index: int
    removed: bool


class _RoyalData(_Exact):
    """Royal data: the registration's context, when one was given, comes back unchanged."""

    context: Any = Field(default=None, description="Your original context object, present only if you gave one.")


class HashedData(_RoyalData):
    """`provenance.registration.hashed` data."""

    provenance: ContentHash


class SubmittedData(_RoyalData):
    """`provenance.registration.submitted` data."""

    provenance: ContentHash
    transaction: TransactionHash


class CompleteData(_RoyalData):
    """`provenance.registration.complete` data."""

    provenance: Provenance
    transaction: Transaction


class NftAddedData(_RoyalData):
    """`provenance.registration.nft_added` data."""

    provenance: ProvenanceWithNft
    transaction: Transaction


class Hashed(_Exact):
    """The body of a `provenance.registration.hashed` delivery."""

    type: Literal["provenance.registration.hashed"]
    data: HashedData


class Submitted(_Exact):
    """The body of a `provenance.registration.submitted` delivery."""

    type: Literal["provenance.registration.submitted"]
    data: SubmittedData


class Complete(_Exact):
    """The body of a `provenance.registration.complete` delivery."""

    type: Literal["provenance.registration.complete"]
    data: CompleteData


class NftAdded(_Exact):
    """The body of a `provenance.registration.nft_added` delivery."""

    type: Literal["provenance.registration.nft_added"]
    data: NftAddedData


EVENTS: dict[str, type[BaseModel]] = {
    tectra_events.CONTENT_SIGNED: ContentSigned,
    tectra_events.BATCH_ANCHORED: BatchAnchored,
    tectra_events.CONTENT_VERIFIED: ContentVerified,
    royal_events.HASHED: Hashed,
    royal_events.SUBMITTED: Submitted,
    royal_events.COMPLETE: Complete,
    royal_events.NFT_ADDED: NftAdded,
}
DIALECT_OF = {**{name: "tectra" for name in tectra_events.TECTRA_EVENTS},
              **{name: "royal" for name in royal_events.ROYAL_EVENTS}}


def model(event_type: str) -> type[BaseModel]:
    """The model of one event's body; ValueError naming the known events otherwise."""
    try:
        return EVENTS[event_type]
    except KeyError:
        raise ValueError(f"unknown event {event_type!r}: choose from {', '.join(EVENTS)}") from None


def json_schema(event_type: str) -> dict:
    """The JSON Schema (draft 2020-12) of one event's webhook body."""
    schema = model(event_type).model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:provsim:event:{event_type}", **schema}
