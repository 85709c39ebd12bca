"""Verification of a file against the registry: Tectra's four checks and its confidence rule."""
from __future__ import annotations

from pathlib import Path

from . import tectra_events
from .analyze import Analysis, analyze_file
from .fingerprint import PHASH_THRESHOLD, phash_distance
from .merkle import LEAF_TYPES, leaf_hash
from .records import Record
from .service import Service
from .signing import verify_signature
from .watermark import MATCH_BIT_ERRORS, PAYLOAD_BITS

CHECKS = ("watermark", "sha256", "perceptual_hash", "blockchain")
AUTHENTIC_AT = 2  # of 4 checks passed


def score(checks: dict) -> tuple[bool, float]:
    """Tectra's rule: each check weighs a quarter; authentic when at least 2 of 4 pass."""
    passed = sum(1 for name in CHECKS if checks[name]["passed"])
    return passed >= AUTHENTIC_AT, passed / len(CHECKS)


def signature_valid(rec: Record) -> bool:
    """Whether the record's Ed25519 signature verifies under its signer's key."""
    return verify_signature(rec.signer.public_key_hex, rec.signed_message(), bytes.fromhex(rec.signature_hex))


def nearest_by_payload(service: Service, payload: bytes | None) -> tuple[Record, int] | None:
    """The marked record whose watermark payload this is (within MATCH_BIT_ERRORS bits), and the bit errors."""
    found = None if payload is None else service.store.record_by_payload(payload, MATCH_BIT_ERRORS)
    return None if found is None else (service.store.record(found[0]), found[1])


def nearest_by_phash(service: Service, phash: str) -> tuple[str | None, int | None]:
    """The record whose perceptual hash is closest to this one within the threshold, and the distance; else Nones."""
    return service.store.nearest_phash(phash, PHASH_THRESHOLD) or (None, None)


def verify_file(service: Service, path: Path) -> dict:
    """Run the checks on one file and return the `content.verified` data."""
    caps = service.settings.caps
    return verify_analysis(service, analyze_file(str(path), caps.image, caps.other, service.watermark_key))


def watermark_match(bit_errors: int | None) -> dict:
    """The watermark check: passed with the payload's bit errors, or failed when no record's payload is near."""
    if bit_errors is None:
        return {"passed": False, "details": f"No payload matched (none within {MATCH_BIT_ERRORS} of {PAYLOAD_BITS} bits)"}
    return {"passed": True, "details": f"Payload matched, bit error rate {bit_errors / PAYLOAD_BITS:.1%}"
                                       f" ({bit_errors}/{PAYLOAD_BITS})"}


def sha256_match(match: str | None) -> dict:
    """The sha256 check: passed with how it matched, or failed when no record has the content."""
    if match is None:
        return {"passed": False, "details": "No record with this SHA-256"}
    return {"passed": True, "details": match}


def phash_match(distance: int | None) -> dict:
    """The perceptual check: passed at this distance, or failed when no record is within the threshold."""
    if distance is None:
        return {"passed": False, "details": f"No record within distance {PHASH_THRESHOLD}"}
    return {"passed": True, "details": f"Distance {distance}"}


def chain_match(block_number: int | None) -> dict:
    """The blockchain check: passed with the anchoring block, or failed when no record matched."""
    if block_number is None:
        return {"passed": False, "details": "No matching record"}
    return {"passed": True, "details": f"Anchored in block {block_number}, proof verified on chain"}


def verify_analysis(service: Service, analysis: Analysis) -> dict:
    """Run the checks on an analysed file (hashed and fingerprinted already) and return the `content.verified` data."""
    phash = analysis.fingerprint.perceptual_hash
    exact = service.store.record_by_content(analysis.digest.sha256, analysis.digest.blake3)
    marked = nearest_by_payload(service, analysis.mark)
    rec, how = exact or (marked[0] if marked else None, None)  # an exact match, else the watermark's record
    distance, missed = None, False
    if rec is not None and phash and rec.perceptual_hash:
        distance = phash_distance(phash, rec.perceptual_hash)
    elif rec is None and phash:
        nearest_id, distance = nearest_by_phash(service, phash)
        if nearest_id is not None:
            rec = service.store.record(nearest_id)
        else:
            missed = service.store.has_phash()
    sig_ok = rec is not None and signature_valid(rec)
    checks = {
        "watermark": _watermark_check(analysis, marked, rec),
        "sha256": _sha256_check(rec, how, sig_ok),
        "perceptual_hash": _phash_check(rec, phash, distance, sig_ok, analysis.fingerprint.reason, missed),
        "blockchain": _chain_check(service, rec),
    }
    authentic, confidence = score(checks)
    signer = None if rec is None else {"org_name": rec.signer.org_name, "org_type": rec.signer.org_type}
    return tectra_events.content_verified(authentic, confidence, rec.id if rec else None, checks, signer)


def _watermark_check(analysis: Analysis, marked: tuple[Record, int] | None, rec: Record | None) -> dict:
    """A watermark payload read from the file that leads to a record whose signature verifies."""
    if analysis.mark is None:
        reason = analysis.fingerprint.reason or "no image to read"
        return {"passed": False, "details": f"No watermark read: {reason}"}
    if marked is None:
        return watermark_match(None)
    owner, errors = marked
    if not signature_valid(owner):
        return {"passed": False, "details": "Payload matched, but the record's signature does not verify"}
    check = watermark_match(errors)
    if rec is not None and owner.id != rec.id:
        check["details"] += f", record {owner.id}"
    return check


_EXACT = {"sha256": "Exact match", "marked": "Exact match (watermarked copy)",
          "blake3": "Exact match (BLAKE3: registered by content hash)"}


def _sha256_check(rec: Record | None, how: str | None, sig_ok: bool) -> dict:
    """Exact content match (the original's SHA-256, its marked copy's, or BLAKE3 for a record registered by hash
    alone), signature verified."""
    if how is None:
        return sha256_match(None)
    match = _EXACT[how]
    if not sig_ok:
        return {"passed": False, "details": f"{match}, but the record's signature does not verify"}
    return sha256_match(match)


def _phash_check(rec: Record | None, phash: str | None, distance: int | None, sig_ok: bool,
                 reason: str | None, missed: bool) -> dict:
    """Perceptual match within the threshold, with a record whose signature verifies (missed: none within it)."""
    if phash is None:
        return {"passed": False, "details": f"No perceptual hash: {reason}"}
    if missed:
        return phash_match(None)
    if distance is None:
        return {"passed": False, "details": "No record with a perceptual hash"}
    if distance > PHASH_THRESHOLD:
        return {"passed": False, "details": f"Distance {distance} (threshold {PHASH_THRESHOLD})"}
    if not sig_ok:
        return {"passed": False, "details": f"Distance {distance}, but the record's signature does not verify"}
    return phash_match(distance)


def _chain_check(service: Service, rec: Record | None) -> dict:
    """The record's Merkle proof verified on chain against its anchored root."""
    if rec is None:
        return chain_match(None)
    current = service.store.record(rec.id)
    if current.blockchain_status != "anchored":
        return {"passed": False, "details": "Pending"}
    proof = service.proof(rec.id)
    batch = service.store.batch(current.batch_id)
    leaf = leaf_hash(LEAF_TYPES, current.leaf_values())
    ok = service.chain.verify_proof(
        bytes.fromhex(proof["root"][2:]), [bytes.fromhex(p[2:]) for p in proof["proof"]], leaf
    )
    if not ok:
        return {"passed": False, "details": f"Proof rejected by the registry on {batch.network}"}
    return chain_match(batch.block_number)
