"""Tectra event types and payloads (the `data` object of each webhook), built from domain records."""
from __future__ import annotations

from .records import Batch, Record

CONTENT_SIGNED = "content.signed"
BATCH_ANCHORED = "batch.anchored"
CONTENT_VERIFIED = "content.verified"
TECTRA_EVENTS = (CONTENT_SIGNED, BATCH_ANCHORED, CONTENT_VERIFIED)


def content_signed(rec: Record) -> dict:
    """`content.signed` data: record id, hashes, signature, signer and chain status."""
    return {
        "record_id": rec.id,
        "sha256": rec.sha256,
        "perceptual_hash": rec.perceptual_hash,
        "signature_hex": rec.signature_hex,
        "original_filename": rec.original_filename,
        "origin_type": rec.origin_type,
        "signer": {
            "org_name": rec.signer.org_name,
            "org_type": rec.signer.org_type,
            "key_name": rec.signer.key_name,
        },
        "blockchain_status": rec.blockchain_status,
    }


def batch_anchored(batch: Batch, record_ids: list[str]) -> dict:
    """`batch.anchored` data: batch, Merkle root, leaf count, transaction and its records."""
    return {
        "batch_id": batch.id,
        "merkle_root": batch.merkle_root,
        "leaf_count": batch.leaf_count,
        "tx_hash": batch.tx_hash,
        "block_number": batch.block_number,
        "network": batch.network,
        "record_ids": list(record_ids),
    }


def content_verified(
    authentic: bool, confidence: float, record_id: str | None, checks: dict, signer: dict | None
) -> dict:
    """`content.verified` data: verdict, confidence, matched record, the four checks, signer."""
    return {
        "authentic": authentic,
        "confidence": confidence,
        "record_id": record_id,
        "checks": checks,
        "signer": signer,
    }
