"""Ed25519 signing keys kept on disk, and the exact message a content signature covers.

Signed message (ASCII, UTF-8 encoded, no trailing newline), five fields joined by "|":

    provsim-sig-v1|<sha256>|<phash>|<timestamp>|<key_id>

- provsim-sig-v1: SIGNATURE_VERSION, a domain-separation and version tag, so a
  signature made here can never be replayed as a signature over another format;
- sha256: the content's SHA-256, 64 lowercase hex characters;
- phash: the 64-bit perceptual hash, 16 lowercase hex characters, or the empty
  string when the content has none (non-images);
- timestamp: the signing time as ISO 8601, e.g. 2025-06-14T09:32:00Z;
- key_id: "ed25519:" + the first 16 hex characters of SHA-256(raw 32-byte public key).

This is Tectra's published shape sha256|phash|timestamp|signer with the version
tag in front and the signer given as key_id. No field may contain "|", so the
split is unambiguous. The signature is the 64-byte Ed25519 signature (RFC 8032)
of these bytes; signature_hex is its lowercase hex.

A registration by content hash alone (Royal's register with `content_hash` and no
file) has no SHA-256 or perceptual hash; its signature covers, under its own tag,

    provsim-sig-blake3-v1|<blake3>|<timestamp>|<key_id>

with blake3 the content's BLAKE3 as 64 lowercase hex characters.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_VERSION = "provsim-sig-v1"
CONTENT_HASH_VERSION = "provsim-sig-blake3-v1"
ALGORITHM = "Ed25519"
KEY_ID_PREFIX = "ed25519:"
KEY_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
PHASH_PATTERN = re.compile(r"[0-9a-f]{16}")
KEY_FILE_MODE = 0o600


@dataclass(frozen=True)
class SignerIdentity:
    """Who signs: organisation name and type, and the key's name (also its file name)."""

    org_name: str
    org_type: str
    key_name: str


class Signer:
    """An Ed25519 private key together with the identity it signs for."""

    algorithm = ALGORITHM

    def __init__(self, private_key: Ed25519PrivateKey, identity: SignerIdentity) -> None:
        self._private_key = private_key
        self.identity = identity
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key_hex = raw.hex()
        self.key_id = KEY_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, data_dir: Path, identity: SignerIdentity) -> Signer:
        """Load data_dir/keys/<key_name>.pem, creating it (mode 0600) and its JSON identity sidecar on first use."""
        if not KEY_NAME_PATTERN.fullmatch(identity.key_name):
            raise ValueError(f"key_name {identity.key_name!r} must match {KEY_NAME_PATTERN.pattern}")
        keys_dir = Path(data_dir) / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem_path = keys_dir / f"{identity.key_name}.pem"
        sidecar = keys_dir / f"{identity.key_name}.json"
        if not pem_path.exists():
            _create_key_file(pem_path)
        private_key = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError(f"{pem_path.name} does not hold an Ed25519 private key")
        signer = cls(private_key, identity)
        if sidecar.exists():
            recorded = json.loads(sidecar.read_text())
            stored = SignerIdentity(recorded["org_name"], recorded["org_type"], recorded["key_name"])
            if stored != identity:
                raise ValueError(f"key {identity.key_name!r} belongs to {asdict(stored)}, not {asdict(identity)}")
            if recorded.get("key_id") != signer.key_id:
                raise ValueError(f"{sidecar.name} records key {recorded.get('key_id')}, but {pem_path.name} is {signer.key_id}")
        else:
            _write_atomically(sidecar, json.dumps(signer.info(), indent=2, sort_keys=True).encode() + b"\n", 0o644)
        return signer

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of message."""
        return self._private_key.sign(message)

    def info(self) -> dict[str, str]:
        """Return the public description: key_id, algorithm, public_key_hex and the identity fields."""
        return {
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "public_key_hex": self.public_key_hex,
            **asdict(self.identity),
        }


def signing_message(sha256_hex: str, phash_hex: str | None, timestamp_iso: str, key_id: str) -> bytes:
    """Return the bytes to sign: f"{SIGNATURE_VERSION}|{sha256}|{phash or ''}|{timestamp}|{key_id}"."""
    if not SHA256_PATTERN.fullmatch(sha256_hex):
        raise ValueError(f"sha256 must be 64 lowercase hex characters, got {sha256_hex!r}")
    if phash_hex is not None and not PHASH_PATTERN.fullmatch(phash_hex):
        raise ValueError(f"perceptual hash must be 16 lowercase hex characters or None, got {phash_hex!r}")
    _check_stamp(timestamp_iso, key_id)
    return f"{SIGNATURE_VERSION}|{sha256_hex}|{phash_hex or ''}|{timestamp_iso}|{key_id}".encode()


def content_hash_message(blake3_hex: str, timestamp_iso: str, key_id: str) -> bytes:
    """Return the bytes to sign for a registration by content hash alone: f"{CONTENT_HASH_VERSION}|{blake3}|{timestamp}|{key_id}"."""
    if not SHA256_PATTERN.fullmatch(blake3_hex):
        raise ValueError(f"blake3 must be 64 lowercase hex characters, got {blake3_hex!r}")
    _check_stamp(timestamp_iso, key_id)
    return f"{CONTENT_HASH_VERSION}|{blake3_hex}|{timestamp_iso}|{key_id}".encode()


def _check_stamp(timestamp_iso: str, key_id: str) -> None:
    """ValueError unless the timestamp is ISO 8601 and both fields are printable ASCII without '|'."""
    try:
        datetime.fromisoformat(timestamp_iso)
    except ValueError as exc:
        raise ValueError(f"timestamp must be ISO 8601, got {timestamp_iso!r}") from exc
    if "|" in timestamp_iso or "|" in key_id or not key_id.isascii() or not key_id.isprintable():
        raise ValueError(f"timestamp and key_id must be printable ASCII without '|': {timestamp_iso!r}, {key_id!r}")


def verify_signature(public_key_hex: str, message: bytes, signature: bytes) -> bool:
    """Tell whether signature is a valid Ed25519 signature of message by that raw public key (never raises on bad input)."""
    try:
        public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public_key.verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_or_create_secret(data_dir: Path, name: str, size: int = 32) -> bytes:
    """The random secret in data_dir/keys/<name>.key, created (mode 0600) on first use."""
    path = Path(data_dir) / "keys" / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        _publish_once(path, os.urandom(size))
    stored = path.read_bytes()
    if len(stored) != size:
        raise ValueError(f"{path} holds {len(stored)} bytes, not {size}")
    return stored


def _create_key_file(pem_path: Path) -> None:
    """Generate a key and publish it at pem_path (mode 0600) unless another process got there first."""
    _publish_once(pem_path, Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))


def _publish_once(path: Path, data: bytes) -> None:
    """Write data to path (mode 0600) unless another process got there first: the first writer wins."""
    temporary = _write_temporary(path, data, KEY_FILE_MODE)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace path with data through a temporary file, so readers never see it half written."""
    temporary = _write_temporary(path, data, mode)
    os.replace(temporary, path)


def _write_temporary(path: Path, data: bytes, mode: int) -> Path:
    """Write data to a fresh file beside path, created with mode from the start, and fsync it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary
