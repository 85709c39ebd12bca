"""A store file made before tenants opens with its records intact, as the operator's own."""
from __future__ import annotations

import sqlite3

from pipeline.store import SCHEMA, Store

OLD_RECORDS = (SCHEMA.split(";")[0]
               .replace("sha256 TEXT,", "sha256 TEXT NOT NULL,")
               .replace("size INTEGER,", "size INTEGER NOT NULL,")
               .replace("  tenant TEXT NOT NULL DEFAULT '',\n", "")
               .replace("UNIQUE (sha256, key_id, tenant)", "UNIQUE (sha256, key_id)"))
SIGNER = '{"org_name": "o", "org_type": "news_agency", "key_name": "k", "key_id": "ed25519:1", "public_key_hex": "00"}'
PARTY = '{"number": "1", "username": "provsim"}'


def test_old_records_table_is_rebuilt_keeping_rows_and_references(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    assert "tenant" not in OLD_RECORDS and "NOT NULL,\n  blake3" in OLD_RECORDS
    conn.execute(OLD_RECORDS)
    conn.execute(
        "INSERT INTO records (id, sha256, blake3, size, mime, original_filename, source, origin_type, signed_at,"
        " signature_hex, signer_json, key_id, originator_json, registrar_json, seq)"
        " VALUES ('r1', ?, ?, 3, 'image/jpeg', 'a.jpg', 'a.jpg', 'camera_image', '2025-06-14T09:32:00Z', 'aa',"
        " ?, 'ed25519:1', ?, ?, 1)", ("11" * 32, "22" * 32, SIGNER, PARTY, PARTY))
    conn.commit()
    conn.close()

    store = Store(path)
    try:
        [rec] = store.records()
        assert (rec.id, rec.sha256, rec.size, rec.tenant) == ("r1", "11" * 32, 3, None)
        assert store.registration("11" * 32, "22" * 32, "ed25519:1", None) == rec
        assert store.registration("11" * 32, "22" * 32, "ed25519:1", "acme") is None
        assert store.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert store.conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    finally:
        store.close()
    Store(path).close()  # a second open finds nothing to upgrade
