"""Durable transactional outbox in SQLite: schema, enqueue inside the caller's transaction, endpoints, delivery log."""

import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from os import PathLike

from emitter import dialects
from emitter.endpoint import DEFAULT_GRACE, Endpoint
from emitter.event import Event

STATUSES = ("pending", "delivering", "delivered", "failed")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS wh_endpoints (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT,
        dialect TEXT NOT NULL,
        persistent INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        previous_secrets TEXT NOT NULL DEFAULT '[]',
        tenant TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS wh_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS wh_deliveries (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES wh_events(id),
        endpoint_id TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        dialect TEXT NOT NULL,
        body BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        next_attempt_at REAL,
        created_at REAL NOT NULL,
        delivered_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS wh_deliveries_lane ON wh_deliveries (status, endpoint_id, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS wh_deliveries_event ON wh_deliveries (event_id)",
    """CREATE TABLE IF NOT EXISTS wh_attempts (
        delivery_id TEXT NOT NULL REFERENCES wh_deliveries(id),
        n INTEGER NOT NULL,
        at REAL NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms REAL NOT NULL,
        PRIMARY KEY (delivery_id, n)
    ) WITHOUT ROWID""",
)


def connect(path: "str | PathLike[str]") -> sqlite3.Connection:
    """Open an outbox database: WAL, synchronous=NORMAL, busy_timeout=10000, foreign keys on."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the wh_* tables and indexes if they do not exist yet, and add columns newer versions need."""
    for statement in _SCHEMA:
        conn.execute(statement)
    _add_column(conn, "wh_endpoints", "previous_secrets", "TEXT NOT NULL DEFAULT '[]'")
    _add_column(conn, "wh_endpoints", "tenant", "TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS wh_endpoints_tenant ON wh_endpoints (tenant)")


def _add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    """Add a column an older version of the table lacks (another process may add it at the same time)."""
    if _has_column(conn, table, column):
        return
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except sqlite3.OperationalError:
        if not _has_column(conn, table, column):
            raise


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether `table` has a column called `column`."""
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def enqueue(conn: sqlite3.Connection, event: Event, endpoints: Iterable[Endpoint]) -> list[str]:
    """Add the event and a pending delivery per wanting endpoint, uncommitted; [] if the id or key exists."""
    now = time.time()
    inserted = conn.execute(
        "INSERT INTO wh_events (id, type, timestamp, data, idempotency_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            event.id,
            event.type,
            event.timestamp,
            json.dumps(event.data, separators=(",", ":"), ensure_ascii=False),
            event.idempotency_key,
            now,
        ),
    ).rowcount
    if not inserted:
        return []
    bodies: dict[str, bytes] = {}
    rows = []
    for ep in endpoints:
        if not ep.wants(event.type):
            continue
        dialect = dialects.get(ep.dialect)
        if ep.dialect not in bodies:
            bodies[ep.dialect] = dialect.render(event)
        rows.append(
            (
                "dlv_" + secrets.token_hex(10),
                event.id,
                ep.id,
                ep.url,
                ep.secret,
                ep.dialect,
                bodies[ep.dialect],
                len(dialect.RETRY_SCHEDULE),
                now,
                now,
            )
        )
    conn.executemany(
        "INSERT INTO wh_deliveries (id, event_id, endpoint_id, url, secret, dialect, body, status,"
        " max_attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        rows,
    )
    return [row[0] for row in rows]


_ENDPOINT_COLUMNS = "id, url, secret, events, dialect, persistent, created_at, previous_secrets, tenant"


def save_endpoint(conn: sqlite3.Connection, ep: Endpoint) -> None:
    """Insert or replace an endpoint row, previous secrets included; never commits."""
    conn.execute(
        f"INSERT OR REPLACE INTO wh_endpoints ({_ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ep.id,
            ep.url,
            ep.secret,
            json.dumps(list(ep.events)) if ep.events is not None else None,
            ep.dialect,
            int(ep.persistent),
            ep.created_at,
            json.dumps(ep.previous_secrets),
            ep.tenant,
        ),
    )


def _endpoint(row: tuple) -> Endpoint:
    """An Endpoint from a wh_endpoints row."""
    ep_id, url, secret, events, dialect, persistent, created_at, previous_secrets, tenant = row
    return Endpoint(
        id=ep_id,
        url=url,
        secret=secret,
        events=tuple(json.loads(events)) if events is not None else None,
        dialect=dialect,
        persistent=bool(persistent),
        created_at=created_at,
        previous_secrets=json.loads(previous_secrets),
        tenant=tenant,
    )


def list_endpoints(conn: sqlite3.Connection, persistent_only: bool = True, tenant: str | None = None) -> list[Endpoint]:
    """Saved endpoints in creation order, of one tenant if given; non-persistent ones only when persistent_only is False."""
    clauses = (["persistent = 1"] if persistent_only else []) + (["tenant = ?"] if tenant is not None else [])
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    args = (tenant,) if tenant is not None else ()
    rows = conn.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM wh_endpoints{where} ORDER BY created_at, id", args)
    return [_endpoint(row) for row in rows]


def get_endpoint(conn: sqlite3.Connection, id_or_url: str) -> Endpoint | None:
    """The endpoint with this id, else the oldest one with this URL, else None."""
    row = conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM wh_endpoints WHERE id = ? OR url = ?"
        " ORDER BY id = ? DESC, created_at, id LIMIT 1",
        (id_or_url, id_or_url, id_or_url),
    ).fetchone()
    return _endpoint(row) if row else None


def rotate_secret(
    conn: sqlite3.Connection,
    endpoint_id: str,
    new_secret: str | None = None,
    grace_seconds: float = DEFAULT_GRACE,
    now: float | None = None,
) -> Endpoint:
    """Give an endpoint a new secret, the old one signing on for grace_seconds; uncommitted; LookupError if none."""
    row = conn.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM wh_endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    if row is None:
        raise LookupError(f"no webhook endpoint with id {endpoint_id!r}")
    rotated = _endpoint(row).rotate(new_secret, grace_seconds, now)
    save_endpoint(conn, rotated)
    return rotated


def remove_endpoint(conn: sqlite3.Connection, id: str) -> bool:
    """Delete an endpoint and mark its pending deliveries failed; False if no such endpoint. Never commits."""
    if not conn.execute("DELETE FROM wh_endpoints WHERE id = ?", (id,)).rowcount:
        return False
    conn.execute(
        "UPDATE wh_deliveries SET status = 'failed', next_attempt_at = NULL"
        " WHERE endpoint_id = ? AND status = 'pending'",
        (id,),
    )
    return True


def _id_filter(column: str, ids: Iterable[str] | None) -> tuple[str, list]:
    """A SQL condition and its parameter restricting `column` to `ids` (empty when ids is None)."""
    if ids is None:
        return "", []
    return f" AND {column} IN (SELECT value FROM json_each(?))", [json.dumps(list(ids))]


def list_deliveries(
    conn: sqlite3.Connection,
    status: str | None = None,
    endpoint_id: str | None = None,
    event_ids: Iterable[str] | None = None,
    delivery_ids: Iterable[str] | None = None,
) -> list[dict]:
    """Deliveries in creation order with their attempt log; times are epoch seconds."""
    where, params = _id_filter("d.event_id", event_ids)
    by_id, id_params = _id_filter("d.id", delivery_ids)
    where += by_id
    params += id_params
    if status is not None:
        where += " AND d.status = ?"
        params.append(status)
    if endpoint_id is not None:
        where += " AND d.endpoint_id = ?"
        params.append(endpoint_id)
    rows = conn.execute(
        "SELECT d.id, d.event_id, e.type, d.endpoint_id, d.url, d.status, d.created_at, d.delivered_at,"
        " d.next_attempt_at FROM wh_deliveries d JOIN wh_events e ON e.id = d.event_id"
        f" WHERE 1 = 1{where} ORDER BY d.created_at, d.rowid",
        params,
    ).fetchall()
    deliveries = {
        row[0]: {
            "id": row[0],
            "event_id": row[1],
            "event_type": row[2],
            "endpoint_id": row[3],
            "url": row[4],
            "status": row[5],
            "attempts": [],
            "created_at": row[6],
            "delivered_at": row[7],
            "next_attempt_at": row[8],
        }
        for row in rows
    }
    attempt_filter, attempt_params = _id_filter("delivery_id", deliveries)
    for delivery_id, n, at, status_code, error, duration_ms in conn.execute(
        "SELECT delivery_id, n, at, status_code, error, duration_ms FROM wh_attempts"
        f" WHERE 1 = 1{attempt_filter} ORDER BY delivery_id, n",
        attempt_params,
    ):
        deliveries[delivery_id]["attempts"].append(
            {"n": n, "at": at, "status_code": status_code, "error": error, "duration_ms": duration_ms}
        )
    return list(deliveries.values())


def event_mark(conn: sqlite3.Connection) -> int:
    """How far the events table goes now; events_since(conn, mark) lists the events added after it."""
    return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM wh_events").fetchone()[0]


def events_since(conn: sqlite3.Connection, mark: int) -> list[str]:
    """Ids of the events added after `mark` (from event_mark), oldest first."""
    return [row[0] for row in conn.execute("SELECT id FROM wh_events WHERE rowid > ? ORDER BY rowid", (mark,))]


def retry_delivery(conn: sqlite3.Connection, delivery_id: str) -> bool:
    """Requeue a failed or delivered delivery now with one more attempt allowed, uncommitted; False if not."""
    return bool(
        conn.execute(
            "UPDATE wh_deliveries SET status = 'pending', next_attempt_at = ?, delivered_at = NULL,"
            " max_attempts = attempts + 1 WHERE id = ? AND status IN ('failed', 'delivered')",
            (time.time(), delivery_id),
        ).rowcount
    )


def summary(conn: sqlite3.Connection, event_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Delivery counts per status (every status present, zero if none) and their total."""
    where, params = _id_filter("event_id", event_ids)
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in conn.execute(
        f"SELECT status, COUNT(*) FROM wh_deliveries WHERE 1 = 1{where} GROUP BY status", params
    ):
        counts[status] = count
    counts["total"] = sum(counts.values())
    return counts
