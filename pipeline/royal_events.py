"""Royal event types and payloads (the `data` object of each webhook), built from domain records.

Shapes follow Royal's webhook documentation field for field: `context` only when the registration
carried one; `content_hash` is the BLAKE3 hash; originator and registrar are `{number, username}`
with the Royal id as a decimal string; `transaction` carries every receipt field.
"""
from __future__ import annotations

from .chain import AnchorReceipt
from .records import Record

HASHED = "provenance.registration.hashed"
SUBMITTED = "provenance.registration.submitted"
COMPLETE = "provenance.registration.complete"
NFT_ADDED = "provenance.registration.nft_added"
ROYAL_EVENTS = (HASHED, SUBMITTED, COMPLETE, NFT_ADDED)
STANDARD_EVENTS = (COMPLETE, NFT_ADDED)  # every registration; the others only for API registrations


def _with_context(rec: Record, data: dict) -> dict:
    """Put the registration's context first, when it has one."""
    return {"context": rec.context, **data} if rec.context is not None else data


def _party(number: str, username: str) -> dict:
    """An originator or registrar: Royal id as a decimal string, and a username."""
    return {"number": str(number), "username": username}


def _provenance(rec: Record) -> dict:
    """The provenance object of a registration that has an id."""
    return {
        "content_hash": rec.blake3,
        "id": rec.id,
        "originator": _party(rec.originator.number, rec.originator.username),
        "registrar": _party(rec.registrar.number, rec.registrar.username),
    }


def transaction(receipt: AnchorReceipt, removed: bool = False, log_index: int | None = None) -> dict:
    """The transaction object: every receipt field, `removed` true once its block left the chain."""
    return {
        "transaction_hash": receipt.transaction_hash,
        "block_hash": receipt.block_hash,
        "block_number": receipt.block_number,
        "chain_id": receipt.chain_id,
        "log_index": receipt.log_index if log_index is None else log_index,
        "transaction_index": receipt.transaction_index,
        "removed": removed,
    }


def hashed(rec: Record) -> dict:
    """`provenance.registration.hashed`: the content hash is known."""
    return _with_context(rec, {"provenance": {"content_hash": rec.blake3}})


def submitted(rec: Record, tx_hash: str) -> dict:
    """`provenance.registration.submitted`: the registration's transaction is on its way."""
    return _with_context(rec, {"provenance": {"content_hash": rec.blake3},
                               "transaction": {"transaction_hash": tx_hash}})


def complete(rec: Record, receipt: AnchorReceipt, removed: bool = False) -> dict:
    """`provenance.registration.complete`: confirmed on chain (or, with removed, no longer)."""
    return _with_context(rec, {"provenance": _provenance(rec), "transaction": transaction(receipt, removed)})


def nft_added(rec: Record, receipt: AnchorReceipt, nft_address: str, token_id: str, log_index: int) -> dict:
    """`provenance.registration.nft_added`: the registration's NFT is minted; the mint's receipt."""
    provenance = {**_provenance(rec), "nft": {"address": nft_address, "id": str(token_id)}}
    return _with_context(rec, {"provenance": provenance, "transaction": transaction(receipt, log_index=log_index)})
