"""The SQLite store: records, batches, chain journal and deployments, beside the webhook outbox."""
from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from emitter import outbox

from .chain import AnchorReceipt
from .records import Batch, ChainTx, Party, Record, Signer

DB_FILE_MODE = 0o600
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  id TEXT PRIMARY KEY,
  sha256 TEXT,
  blake3 TEXT NOT NULL,
  size INTEGER,
  perceptual_hash TEXT,
  phash_reason TEXT,
  mime TEXT NOT NULL,
  original_filename TEXT NOT NULL,
  source TEXT NOT NULL,
  origin_type TEXT NOT NULL,
  signed_at TEXT NOT NULL,
  signature_hex TEXT NOT NULL,
  signer_json TEXT NOT NULL,
  key_id TEXT NOT NULL,
  context_json TEXT,
  batch_id TEXT REFERENCES batches(id),
  leaf_index INTEGER,
  blockchain_status TEXT NOT NULL DEFAULT 'pending',
  originator_json TEXT NOT NULL,
  registrar_json TEXT NOT NULL,
  extended INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL,
  tenant TEXT NOT NULL DEFAULT '',
  UNIQUE (sha256, key_id, tenant)
);
CREATE INDEX IF NOT EXISTS records_blake3 ON records(blake3);
CREATE INDEX IF NOT EXISTS records_unbatched ON records(batch_id) WHERE batch_id IS NULL;
CREATE INDEX IF NOT EXISTS records_batch ON records(batch_id, leaf_index);
CREATE INDEX IF NOT EXISTS records_seq ON records(seq);
CREATE TABLE IF NOT EXISTS phash_chunks (
  chunk INTEGER NOT NULL,
  value INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  record_id TEXT NOT NULL REFERENCES records(id),
  phash INTEGER NOT NULL,
  PRIMARY KEY (chunk, value, seq, record_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (
  record_id TEXT PRIMARY KEY REFERENCES records(id),
  payload TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  psnr REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS watermarks_sha256 ON watermarks(sha256);
CREATE TABLE IF NOT EXISTS payload_chunks (
  chunk INTEGER NOT NULL,
  value INTEGER NOT NULL,
  record_id TEXT NOT NULL REFERENCES records(id),
  PRIMARY KEY (chunk, value, record_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  merkle_root TEXT NOT NULL,
  leaf_count INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  tx_hash TEXT, block_hash TEXT, block_number INTEGER, chain_id INTEGER,
  log_index INTEGER, transaction_index INTEGER, network TEXT, gas_used INTEGER
);
CREATE TABLE IF NOT EXISTS chain_journal (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  raw_tx BLOB NOT NULL,
  block_timestamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments (
  chain_id INTEGER NOT NULL,
  genesis_hash TEXT NOT NULL,
  contract TEXT NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (chain_id, genesis_hash, contract)
);
CREATE TABLE IF NOT EXISTS chain_txs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  batch_id TEXT NOT NULL REFERENCES batches(id),
  tx_hash TEXT NOT NULL,
  nonce INTEGER NOT NULL,
  raw_tx BLOB NOT NULL,
  status TEXT NOT NULL,
  chain_id INTEGER NOT NULL,
  block_hash TEXT, block_number INTEGER, log_index INTEGER, transaction_index INTEGER, gas_used INTEGER,
  submitted_at REAL NOT NULL, confirmed_at REAL, removed_at REAL
);
CREATE INDEX IF NOT EXISTS chain_txs_status ON chain_txs(status);
CREATE TABLE IF NOT EXISTS nfts (
  record_id TEXT PRIMARY KEY REFERENCES records(id),
  tx_id INTEGER NOT NULL REFERENCES chain_txs(id),
  contract TEXT NOT NULL,
  token_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  log_index INTEGER NOT NULL
);
"""

_RECORD_COLUMNS = (
    "id, sha256, blake3, size, perceptual_hash, phash_reason, mime, original_filename, source, "
    "origin_type, signed_at, signature_hex, signer_json, key_id, context_json, batch_id, "
    "leaf_index, blockchain_status, originator_json, registrar_json, extended, tenant"
)

# Multi-index hashing of the 64-bit pHash in 5 disjoint chunks (13, 13, 13, 13 and 12 bits, low bits first). Two
# hashes within distance d cannot differ by more than d // 5 bits in every chunk (5 * (d // 5 + 1) > d), so a lookup
# reads the records whose value in some chunk is within d // 5 bits of the query's (for d = 8: 14 or 13 values a
# chunk) and measures only those. The full hash is kept beside each chunk row (as a signed 64-bit integer).
PHASH_CHUNK_BITS = (13, 13, 13, 13, 12)
_PHASH_CHUNK_SHIFTS = tuple(sum(PHASH_CHUNK_BITS[:i]) for i in range(len(PHASH_CHUNK_BITS)))
_PHASH_MASK = (1 << 64) - 1

# The 128-bit watermark payloads in 7 chunks (19, 19 and five of 18 bits): a payload read back with at most 6 bit
# errors matches its record's exactly in at least one chunk, so a lookup reads the records sharing a chunk value.
PAYLOAD_CHUNK_BITS = (19, 19, 18, 18, 18, 18, 18)

# The records table before tenants: its rows move to the current table (all the operator's, tenant '').
_RECORDS_BEFORE_TENANTS = _RECORD_COLUMNS.removesuffix(", tenant") + ", seq"


class Store:
    """One SQLite file holding the service's state and the webhook outbox."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(self.path)
        self.conn = outbox.connect(self.path)
        self.conn.isolation_level = None  # explicit BEGIN/COMMIT in transaction()
        _upgrade_records(self)
        with self.transaction() as conn:
            indexed = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'phash_chunks'").fetchone()
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if indexed is None:
                _index_phashes(conn, conn.execute(
                    "SELECT seq, id, perceptual_hash FROM records WHERE perceptual_hash IS NOT NULL"))
            outbox.init_schema(conn)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: state change and outbox rows commit together or not at all."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # a COMMIT that failed may have ended it already
                self.conn.execute("ROLLBACK")
            raise

    # records -----------------------------------------------------------------

    def insert_record(self, conn: sqlite3.Connection, rec: Record) -> None:
        """Insert a new record (inside the caller's transaction)."""
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM records").fetchone()[0]
        conn.execute(
            f"INSERT INTO records ({_RECORD_COLUMNS}, seq) VALUES ({', '.join('?' * 23)})",
            (
                rec.id, rec.sha256, rec.blake3, rec.size, rec.perceptual_hash, rec.phash_reason,
                rec.mime, rec.original_filename, rec.source, rec.origin_type, rec.signed_at,
                rec.signature_hex, json.dumps(rec.signer.__dict__), rec.signer.key_id,
                None if rec.context is None else json.dumps(rec.context),
                rec.batch_id, rec.leaf_index, rec.blockchain_status, json.dumps(rec.originator.__dict__),
                json.dumps(rec.registrar.__dict__), int(rec.extended), rec.tenant or "", seq,
            ),
        )
        if rec.perceptual_hash is not None:
            _index_phashes(conn, [(seq, rec.id, rec.perceptual_hash)])

    def record(self, record_id: str) -> Record | None:
        """The record with this id, or None."""
        row = self.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ?", (record_id,)
        ).fetchone()
        return _record(row) if row else None

    def record_by_content(self, sha256: str | None, blake3: str) -> tuple[Record, str] | None:
        """The first record of this content, by any signer and tenant, and how it matched: "sha256", "blake3" or
        "marked" (the SHA-256 of its watermarked copy); or None."""
        for how, value, where in (("sha256", sha256, "sha256 = ?"),
                                  ("marked", sha256, "id IN (SELECT record_id FROM watermarks WHERE sha256 = ?)"),
                                  ("blake3", blake3, "blake3 = ?")):
            row = self.conn.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE {where} ORDER BY seq LIMIT 1",
                                    (value,)).fetchone() if value is not None else None
            if row is not None:
                return _record(row), how
        return None

    def registration(self, sha256: str | None, blake3: str, key_id: str, tenant: str | None) -> Record | None:
        """The tenant's record of this content under this key (by SHA-256, or BLAKE3 when there is none), or None."""
        column, value = ("sha256", sha256) if sha256 is not None else ("blake3", blake3)
        row = self.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE {column} = ? AND key_id = ? AND tenant = ?"
            " ORDER BY seq LIMIT 1", (value, key_id, tenant or "")).fetchone()
        return _record(row) if row else None

    def nearest_phash(self, phash: str, max_distance: int) -> tuple[str, int] | None:
        """(record id, distance) of the record nearest this pHash within max_distance (earliest on a tie), or None."""
        value = int(phash, 16)
        radius = max_distance // len(PHASH_CHUNK_BITS)
        selects, args = [], []
        for chunk, (part, bits) in enumerate(zip(_phash_chunks(value), PHASH_CHUNK_BITS)):
            near = [part ^ mask for mask in _flip_masks(bits, radius)]
            selects.append(f"SELECT seq, record_id, phash FROM phash_chunks WHERE chunk = ? AND value IN"
                           f" ({', '.join('?' * len(near))})")
            args += [chunk, *near]
        best = None
        for seq, record_id, other in self.conn.execute(" UNION ALL ".join(selects), args):
            distance = ((value ^ other) & _PHASH_MASK).bit_count()
            if distance <= max_distance and (best is None or (distance, seq) < best[:2]):
                best = (distance, seq, record_id)
        return None if best is None else (best[2], best[0])

    def save_watermark(self, conn: sqlite3.Connection, record_id: str, payload: bytes, path: str, sha256: str,
                       size: int, psnr: float) -> None:
        """Keep a record's marked copy and index its payload (inside the caller's transaction; a re-mark replaces)."""
        conn.execute("INSERT OR REPLACE INTO watermarks (record_id, payload, path, sha256, size, psnr)"
                     " VALUES (?, ?, ?, ?, ?, ?)", (record_id, payload.hex(), path, sha256, size, psnr))
        conn.executemany("INSERT OR IGNORE INTO payload_chunks (chunk, value, record_id) VALUES (?, ?, ?)",
                         [(chunk, part, record_id) for chunk, part in enumerate(_payload_chunks(payload))])

    def watermark(self, record_id: str) -> dict | None:
        """A record's marked copy: payload (hex), path, sha256, size and psnr; or None if it has none."""
        row = self.conn.execute("SELECT payload, path, sha256, size, psnr FROM watermarks WHERE record_id = ?",
                                (record_id,)).fetchone()
        return None if row is None else dict(zip(("payload", "path", "sha256", "size", "psnr"), row))

    def record_by_payload(self, payload: bytes, max_errors: int) -> tuple[str, int] | None:
        """(record id, bit errors) of the marked record whose payload is nearest this one within max_errors
        (at most len(PAYLOAD_CHUNK_BITS) - 1; the earliest on a tie), or None."""
        parts = _payload_chunks(payload)
        query = " UNION ".join(["SELECT record_id FROM payload_chunks WHERE chunk = ? AND value = ?"] * len(parts))
        candidates = [row[0] for row in self.conn.execute(query, [v for pair in enumerate(parts) for v in pair])]
        if not candidates:
            return None
        rows = self.conn.execute(
            "SELECT w.record_id, w.payload FROM watermarks w JOIN records r ON r.id = w.record_id"
            f" WHERE w.record_id IN ({', '.join('?' * len(candidates))}) ORDER BY r.seq", candidates)
        value, best = int.from_bytes(payload, "big"), None
        for record_id, other in rows:
            errors = (value ^ int(other, 16)).bit_count()
            if errors <= max_errors and (best is None or errors < best[1]):
                best = (record_id, errors)
        return best

    def has_phash(self) -> bool:
        """Whether any record has a perceptual hash."""
        return self.conn.execute("SELECT 1 FROM phash_chunks LIMIT 1").fetchone() is not None

    def unbatched_record_ids(self) -> list[str]:
        """Records accepted but not yet in a batch, oldest first."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM records WHERE batch_id IS NULL ORDER BY seq"
        )]

    def records(self, ids: Iterable[str] | None = None) -> list[Record]:
        """Records by id (in the given order), or all records in registration order."""
        if ids is None:
            rows = self.conn.execute(f"SELECT {_RECORD_COLUMNS} FROM records ORDER BY seq")
            return [_record(r) for r in rows]
        by_id = {}
        ids = list(ids)
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start:chunk_start + 500]
            rows = self.conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM records WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            by_id.update({r[0]: _record(r) for r in rows})
        return [by_id[i] for i in ids]

    def batch_records(self, batch_id: str) -> list[Record]:
        """The records of a batch in leaf order."""
        rows = self.conn.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE batch_id = ? ORDER BY leaf_index",
            (batch_id,),
        )
        return [_record(r) for r in rows]

    # batches -----------------------------------------------------------------

    def insert_batch(self, conn: sqlite3.Connection, batch: Batch, record_ids: list[str]) -> None:
        """Close a batch: store it and give each member its leaf index."""
        conn.execute(
            "INSERT INTO batches (id, merkle_root, leaf_count, status, created_at) VALUES (?,?,?,?,?)",
            (batch.id, batch.merkle_root, batch.leaf_count, batch.status, batch.created_at),
        )
        conn.executemany(
            "UPDATE records SET batch_id = ?, leaf_index = ? WHERE id = ?",
            [(batch.id, i, rid) for i, rid in enumerate(record_ids)],
        )

    def mark_anchored(self, conn: sqlite3.Connection, batch: Batch) -> None:
        """Store a batch's receipt and mark its records anchored."""
        conn.execute(
            "UPDATE batches SET status = 'anchored', tx_hash = ?, block_hash = ?, block_number = ?,"
            " chain_id = ?, log_index = ?, transaction_index = ?, network = ?, gas_used = ?"
            " WHERE id = ?",
            (batch.tx_hash, batch.block_hash, batch.block_number, batch.chain_id, batch.log_index,
             batch.transaction_index, batch.network, batch.gas_used, batch.id),
        )
        conn.execute(
            "UPDATE records SET blockchain_status = 'anchored' WHERE batch_id = ?", (batch.id,)
        )

    def batch(self, batch_id: str) -> Batch | None:
        """The batch with this id, or None."""
        row = self.conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return Batch(*row) if row else None

    def batches(self, status: str | None = None) -> list[Batch]:
        """All batches (of one status when given), oldest first."""
        sql = f"SELECT {_BATCH_COLUMNS} FROM batches"
        args: tuple = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        return [Batch(*r) for r in self.conn.execute(sql + " ORDER BY rowid", args)]

    # chain -------------------------------------------------------------------

    def journal_entries(self) -> list[tuple[bytes, int]]:
        """The embedded chain's journalled raw transactions, in send order."""
        return [(bytes(r[0]), r[1]) for r in self.conn.execute(
            "SELECT raw_tx, block_timestamp FROM chain_journal ORDER BY seq"
        )]

    def append_journal(self, conn: sqlite3.Connection, entries: Iterable[tuple[bytes, int]]) -> None:
        """Journal raw transactions of the embedded chain (inside the caller's transaction)."""
        conn.executemany(
            "INSERT INTO chain_journal (raw_tx, block_timestamp) VALUES (?, ?)", list(entries)
        )

    def deployment(self, chain_id: int, genesis_hash: str, contract: str) -> str | None:
        """The address of a contract known for this chain, or None."""
        row = self.conn.execute(
            "SELECT address FROM deployments WHERE chain_id = ? AND genesis_hash = ? AND contract = ?",
            (chain_id, genesis_hash, contract),
        ).fetchone()
        return row[0] if row else None

    def save_deployment(self, conn: sqlite3.Connection, chain_id: int, genesis_hash: str, contract: str,
                        address: str) -> None:
        """Remember where a contract lives on this chain."""
        conn.execute(
            "INSERT OR REPLACE INTO deployments (chain_id, genesis_hash, contract, address) VALUES (?,?,?,?)",
            (chain_id, genesis_hash, contract, address),
        )

    # chain transactions ----------------------------------------------------------

    def insert_tx(self, conn: sqlite3.Connection, tx: ChainTx) -> int:
        """Store a sent transaction (status 'submitted'); returns its row id."""
        cur = conn.execute(
            "INSERT INTO chain_txs (kind, batch_id, tx_hash, nonce, raw_tx, status, chain_id, submitted_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (tx.kind, tx.batch_id, tx.tx_hash, tx.nonce, tx.raw_tx, tx.status, tx.chain_id, tx.submitted_at),
        )
        return cur.lastrowid

    def txs(self, status: str | None = None, kind: str | None = None, batch_id: str | None = None) -> list[ChainTx]:
        """Chain transactions, oldest first, filtered by status, kind and batch when given."""
        where, args = [], []
        for column, value in (("status", status), ("kind", kind), ("batch_id", batch_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_TX_COLUMNS} FROM chain_txs" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [ChainTx(*r[:5], bytes(r[5]), *r[6:]) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def live_txs(self, batch_id: str, kind: str) -> list[ChainTx]:
        """A batch's transactions of one kind that are submitted or confirmed."""
        return [t for t in self.txs(kind=kind, batch_id=batch_id) if t.status in ("submitted", "confirmed")]

    def set_tx_status(self, conn: sqlite3.Connection, tx_id: int, status: str, at: float,
                      receipt: AnchorReceipt | None = None) -> None:
        """Move a transaction to confirmed (with its receipt), removed or replaced."""
        if receipt is not None:
            conn.execute(
                "UPDATE chain_txs SET status = ?, confirmed_at = ?, block_hash = ?, block_number = ?,"
                " log_index = ?, transaction_index = ?, gas_used = ? WHERE id = ?",
                (status, at, receipt.block_hash, receipt.block_number, receipt.log_index,
                 receipt.transaction_index, receipt.gas_used, tx_id),
            )
        else:
            conn.execute("UPDATE chain_txs SET status = ?, removed_at = ? WHERE id = ?", (status, at, tx_id))

    def set_batch_status(self, conn: sqlite3.Connection, batch_id: str, status: str) -> None:
        """Move a batch to closed, submitted or anchored; its records follow (pending unless anchored)."""
        conn.execute("UPDATE batches SET status = ? WHERE id = ?", (status, batch_id))
        conn.execute(
            "UPDATE records SET blockchain_status = ? WHERE batch_id = ?",
            ("anchored" if status == "anchored" else "pending", batch_id),
        )

    def insert_nfts(self, conn: sqlite3.Connection, tx_id: int, contract: str,
                    tokens: Iterable[tuple[str, str, str, int]]) -> None:
        """Store minted tokens: (record id, token id, owner, log index)."""
        conn.executemany(
            "INSERT OR REPLACE INTO nfts (record_id, tx_id, contract, token_id, owner, log_index)"
            " VALUES (?,?,?,?,?,?)",
            [(rid, tx_id, contract, token, owner, log) for rid, token, owner, log in tokens],
        )

    def nft(self, record_id: str) -> dict | None:
        """The NFT minted for a record, with its transaction's receipt, or None."""
        row = self.conn.execute(
            "SELECT n.contract, n.token_id, n.owner, n.log_index, t.tx_hash, t.block_hash, t.block_number,"
            " t.chain_id, t.transaction_index, t.status FROM nfts n JOIN chain_txs t ON t.id = n.tx_id"
            " WHERE n.record_id = ?",
            (record_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("contract", "token_id", "owner", "log_index", "transaction_hash", "block_hash",
                "block_number", "chain_id", "transaction_index", "status")
        return dict(zip(keys, row))


_TX_COLUMNS = (
    "id, kind, batch_id, tx_hash, nonce, raw_tx, status, chain_id, submitted_at, block_hash, block_number,"
    " log_index, transaction_index, gas_used, confirmed_at, removed_at"
)

_BATCH_COLUMNS = (
    "id, merkle_root, leaf_count, status, created_at, tx_hash, block_hash, block_number,"
    " chain_id, log_index, transaction_index, network, gas_used"
)


def _record(row: tuple) -> Record:
    """A Record from a row in _RECORD_COLUMNS order."""
    (rid, sha256, blake3, size, phash, reason, mime, name, source, origin, signed_at, sig,
     signer_json, _key_id, context_json, batch_id, leaf_index, status, originator_json, registrar_json,
     extended, tenant) = row
    return Record(
        id=rid, sha256=sha256, blake3=blake3, size=size, perceptual_hash=phash,
        phash_reason=reason, mime=mime, original_filename=name, source=source,
        origin_type=origin, signed_at=signed_at, signature_hex=sig,
        signer=Signer(**json.loads(signer_json)),
        context=None if context_json is None else json.loads(context_json),
        batch_id=batch_id, leaf_index=leaf_index, blockchain_status=status,
        originator=Party(**json.loads(originator_json)), registrar=Party(**json.loads(registrar_json)),
        extended=bool(extended), tenant=tenant or None,
    )


@functools.cache
def _flip_masks(bits: int, radius: int) -> tuple[int, ...]:
    """Every mask of up to radius set bits among the low `bits` bits, the empty mask first."""
    return tuple(sum(1 << bit for bit in flips) for n in range(radius + 1)
                 for flips in itertools.combinations(range(bits), n))


def _phash_chunks(value: int) -> list[int]:
    """The chunk values of a 64-bit pHash, in chunk order."""
    return [(value >> shift) & ((1 << bits) - 1) for shift, bits in zip(_PHASH_CHUNK_SHIFTS, PHASH_CHUNK_BITS)]


def _payload_chunks(payload: bytes) -> list[int]:
    """The chunk values of a 128-bit payload, most significant bits first."""
    value, parts, left = int.from_bytes(payload, "big"), [], len(payload) * 8
    for bits in PAYLOAD_CHUNK_BITS:
        left -= bits
        parts.append((value >> left) & ((1 << bits) - 1))
    return parts


def _index_phashes(conn: sqlite3.Connection, rows: Iterable[tuple[int, str, str]]) -> None:
    """Add (seq, record id, pHash) rows to the chunk index (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO phash_chunks (chunk, value, seq, record_id, phash) VALUES (?, ?, ?, ?, ?)",
        [(chunk, part, seq, record_id, value - (1 << 64) if value >> 63 else value)
         for seq, record_id, value in ((seq, record_id, int(phash, 16)) for seq, record_id, phash in rows)
         for chunk, part in enumerate(_phash_chunks(value))],
    )


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (it holds webhook secrets), or make it so.

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, DB_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, DB_FILE_MODE)
    finally:
        os.close(fd)


def _upgrade_records(store: Store) -> None:
    """Rebuild a records table made before tenants (SHA-256 required, unique per key) in the current shape."""
    columns = {row[1] for row in store.conn.execute("PRAGMA table_info(records)")}
    if not columns or "tenant" in columns:
        return
    # SQLite's way to change a table's constraints: with foreign keys off, build the new table, copy the
    # rows, drop the old one and take its name; then check that every reference still holds.
    store.conn.execute("PRAGMA foreign_keys=OFF")
    try:
        with store.transaction() as conn:
            conn.execute(SCHEMA.split(";")[0].replace("IF NOT EXISTS records", "records_upgraded"))
            conn.execute(f"INSERT INTO records_upgraded ({_RECORDS_BEFORE_TENANTS})"
                         f" SELECT {_RECORDS_BEFORE_TENANTS} FROM records")
            conn.execute("DROP TABLE records")
            conn.execute("ALTER TABLE records_upgraded RENAME TO records")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"upgrading the records table would break {len(broken)} references")
    finally:
        store.conn.execute("PRAGMA foreign_keys=ON")
