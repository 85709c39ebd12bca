"""Secrets at rest: the data directory 0700, the database and its -wal/-shm 0600, the signing key 0600, API keys hashed."""
from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

from sec_support import pem_body, provsim


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def test_state_made_by_the_cli_is_private_even_under_an_open_umask(tmp_path: Path):
    data = tmp_path / "fresh" / "state"
    key = provsim("apikey", "create", "--tenant", "acme", "--data-dir", str(data), umask=0).stdout.strip()
    added = provsim("endpoint", "add", "http://127.0.0.1:9/hook", "--data-dir", str(data), umask=0).stdout
    assert mode(data) == 0o700, oct(mode(data))
    assert mode(data / "keys") == 0o700, oct(mode(data / "keys"))
    assert mode(data / "keys" / "production.pem") == 0o600
    assert mode(data / "keys" / "watermark.key") == 0o600 and (data / "keys" / "watermark.key").stat().st_size == 32
    assert mode(data / "provsim.db") == 0o600
    for side in ("provsim.db-wal", "provsim.db-shm"):
        if (data / side).exists():  # SQLite removes them when the last connection closes cleanly
            assert mode(data / side) == 0o600, side
    assert key.startswith("psk_") and "secret" in added


def test_a_database_elsewhere_gets_a_private_directory_and_file(tmp_path: Path):
    db = tmp_path / "elsewhere" / "nested" / "state.sqlite"
    provsim("apikey", "create", "--tenant", "acme", "--data-dir", str(tmp_path / "state"), "--db", str(db), umask=0)
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path):
    data = tmp_path / "state"
    provsim("apikey", "create", "--tenant", "acme", "--data-dir", str(data))
    (data / "provsim.db").chmod(0o644)
    provsim("endpoint", "list", "--data-dir", str(data))
    assert mode(data / "provsim.db") == 0o600


def test_the_signing_key_stays_0600_and_its_private_half_is_never_printed(tmp_path: Path):
    data = tmp_path / "state"
    shown = provsim("signer", "show", "--json", "--data-dir", str(data), umask=0)
    pem = data / "keys" / "production.pem"
    assert mode(pem) == 0o600
    assert pem_body(pem) not in shown.stdout + shown.stderr
    again = provsim("signer", "show", "--data-dir", str(data))
    assert mode(pem) == 0o600 and pem_body(pem) not in again.stdout + again.stderr


def test_api_keys_are_stored_only_as_sha256(tmp_path: Path):
    data = tmp_path / "state"
    keys = [provsim("apikey", "create", "--tenant", t, "--data-dir", str(data)).stdout.strip() for t in ("a", "b")]
    conn = sqlite3.connect(data / "provsim.db")
    try:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
        hashes = {row[0] for row in conn.execute("SELECT key_hash FROM api_keys")}
    finally:
        conn.close()
    assert hashes == {hashlib.sha256(key.encode()).hexdigest() for key in keys}
    for key in keys:
        assert all(key not in str(value) for row in rows for value in row)
        secret_part = key.removeprefix("psk_").encode()
        for name in ("provsim.db", "provsim.db-wal"):
            if (data / name).exists():
                assert secret_part not in (data / name).read_bytes(), name
