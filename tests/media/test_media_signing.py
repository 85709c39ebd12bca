"""Tests of pipeline.signing: Ed25519 keys on disk, the signed message format, verification."""

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.signing import SIGNATURE_VERSION, Signer, SignerIdentity, signing_message, verify_signature

IDENTITY = SignerIdentity("Reuters Media", "news_agency", "production")
SHA = "ab" * 32
PHASH = "0123456789abcdef"
WHEN = "2025-06-14T09:32:00Z"


def test_rfc8032_test_vector_1():
    key = Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    signer = Signer(key, IDENTITY)
    assert signer.public_key_hex == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert signer.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert signer.key_id == "ed25519:" + hashlib.sha256(bytes.fromhex(signer.public_key_hex)).hexdigest()[:16]


def test_sign_verify_round_trip_and_tampering(tmp_path: Path):
    signer = Signer.load_or_create(tmp_path, IDENTITY)
    message = signing_message(SHA, PHASH, WHEN, signer.key_id)
    signature = signer.sign(message)
    assert len(signature) == 64
    assert verify_signature(signer.public_key_hex, message, signature)
    assert not verify_signature(signer.public_key_hex, message.replace(b"|2025", b"|2026"), signature)
    assert not verify_signature(signer.public_key_hex, signing_message(SHA, None, WHEN, signer.key_id), signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_signature(signer.public_key_hex, message, flipped)
    other = Signer.load_or_create(tmp_path, SignerIdentity("Reuters Media", "news_agency", "staging"))
    assert not verify_signature(other.public_key_hex, message, signature)
    assert not verify_signature("zz", message, signature)
    assert not verify_signature(signer.public_key_hex, message, signature[:63])


def test_key_persists_across_loads(tmp_path: Path):
    first = Signer.load_or_create(tmp_path, IDENTITY)
    second = Signer.load_or_create(tmp_path, IDENTITY)
    assert (first.key_id, first.public_key_hex) == (second.key_id, second.public_key_hex)
    message = b"hello"
    assert verify_signature(first.public_key_hex, message, second.sign(message))
    other = Signer.load_or_create(tmp_path, SignerIdentity("Reuters Media", "news_agency", "backup"))
    assert other.key_id != first.key_id


def test_key_file_is_pkcs8_pem_with_mode_0600_even_under_a_lax_umask(tmp_path: Path):
    old = os.umask(0)
    try:
        signer = Signer.load_or_create(tmp_path, IDENTITY)
    finally:
        os.umask(old)
    pem = tmp_path / "keys" / "production.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert sorted(p.name for p in pem.parent.iterdir()) == ["production.json", "production.pem"]
    assert json.loads((pem.parent / "production.json").read_text()) == signer.info()


def test_info_and_algorithm(tmp_path: Path):
    signer = Signer.load_or_create(tmp_path, IDENTITY)
    assert signer.algorithm == "Ed25519"
    assert signer.info() == {
        "key_id": signer.key_id,
        "algorithm": "Ed25519",
        "public_key_hex": signer.public_key_hex,
        "org_name": "Reuters Media",
        "org_type": "news_agency",
        "key_name": "production",
    }
    assert signer.key_id.startswith("ed25519:") and len(signer.key_id) == len("ed25519:") + 16


def test_identity_is_bound_to_the_key(tmp_path: Path):
    Signer.load_or_create(tmp_path, IDENTITY)
    with pytest.raises(ValueError, match="belongs to"):
        Signer.load_or_create(tmp_path, SignerIdentity("Someone Else", "news_agency", "production"))


def test_key_name_must_be_a_plain_file_name(tmp_path: Path):
    for bad in ("../escape", ".hidden", "", "a/b"):
        with pytest.raises(ValueError, match="key_name"):
            Signer.load_or_create(tmp_path, SignerIdentity("Org", "news_agency", bad))
    assert not (tmp_path / "escape.pem").exists()


def test_message_format_exact_bytes():
    key_id = "ed25519:0011223344556677"
    assert SIGNATURE_VERSION == "provsim-sig-v1"
    assert signing_message(SHA, PHASH, WHEN, key_id) == (
        b"provsim-sig-v1|" + SHA.encode() + b"|0123456789abcdef|2025-06-14T09:32:00Z|ed25519:0011223344556677"
    )
    assert signing_message(SHA, None, WHEN, key_id) == (
        b"provsim-sig-v1|" + SHA.encode() + b"||2025-06-14T09:32:00Z|ed25519:0011223344556677"
    )


@pytest.mark.parametrize(
    "args",
    [
        (SHA.upper(), PHASH, WHEN, "k"),
        (SHA[:-1], PHASH, WHEN, "k"),
        (SHA, "0123", WHEN, "k"),
        (SHA, PHASH, "yesterday", "k"),
        (SHA, PHASH, WHEN, "a|b"),
    ],
)
def test_message_rejects_ambiguous_fields(args):
    with pytest.raises(ValueError):
        signing_message(*args)
