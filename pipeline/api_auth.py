"""API keys (stored hashed) and who owns which webhooks and records, in the service's SQLite file."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from emitter.clock import iso_utc

from .api_errors import ApiError
from .service import Service
from .store import Store

KEY_PREFIX = "psk_"
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS webhook_owners (
        endpoint_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS webhook_owners_tenant ON webhook_owners (tenant)",
)

bearer = HTTPBearer(auto_error=False, description="An API key from `provsim apikey create --tenant NAME`.")


def init_schema(store: Store) -> None:
    """Create the API's tables if they do not exist yet."""
    with store.transaction() as conn:
        for statement in SCHEMA:
            conn.execute(statement)


def key_hash(key: str) -> str:
    """SHA-256 hex of a key: what the table keeps instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _key_id(digest: str) -> str:
    """A key's row id: its hash's first 12 hex digits, so a lookup needs no comparison of the full hash."""
    return "key_" + digest[:12]


def create_api_key(service: Service, tenant: str) -> str:
    """Make a key for `tenant` (letters, digits, '.', '_', '-'; up to 64) and return it: it is not kept."""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(f"tenant {tenant!r}: use 1 to 64 letters, digits, '.', '_' or '-',"
                         " starting with a letter or digit")
    init_schema(service.store)
    key = KEY_PREFIX + secrets.token_urlsafe(24)  # 32 url-safe characters
    digest = key_hash(key)
    with service.store.transaction() as conn:
        conn.execute("INSERT INTO api_keys (id, tenant, key_hash, created_at) VALUES (?, ?, ?, ?)",
                     (_key_id(digest), tenant, digest, iso_utc(time.time())))
    return key


def tenant_for_key(conn: sqlite3.Connection, key: str) -> str | None:
    """The tenant owning this key, or None; the stored hash is compared in constant time."""
    if not key.startswith(KEY_PREFIX):
        return None
    digest = key_hash(key)
    row = conn.execute("SELECT tenant, key_hash FROM api_keys WHERE id = ?", (_key_id(digest),)).fetchone()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    return row[0]


async def current_tenant(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The tenant of the request's Bearer key; 401 without one or with a key nobody has."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(401, "missing API key: send Authorization: Bearer psk_...", headers=challenge)
    tenant = tenant_for_key(request.app.state.runtime.service.store.conn, credentials.credentials)
    if tenant is None:
        raise ApiError(401, "invalid API key", headers=challenge)
    return tenant


def own_endpoint(conn: sqlite3.Connection, endpoint_id: str, tenant: str) -> None:
    """Record that `tenant` created this endpoint (inside the caller's transaction)."""
    conn.execute("INSERT OR REPLACE INTO webhook_owners (endpoint_id, tenant) VALUES (?, ?)", (endpoint_id, tenant))


def endpoint_ids(conn: sqlite3.Connection, tenant: str) -> set[str]:
    """Every endpoint this tenant created, removed ones included (their delivery log stays theirs)."""
    return {r[0] for r in conn.execute("SELECT endpoint_id FROM webhook_owners WHERE tenant = ?", (tenant,))}


def check_endpoint_owner(conn: sqlite3.Connection, endpoint_id: str, tenant: str) -> None:
    """403 unless `tenant` created this endpoint."""
    row = conn.execute("SELECT tenant FROM webhook_owners WHERE endpoint_id = ?", (endpoint_id,)).fetchone()
    if row is None or row[0] != tenant:
        raise ApiError(403, f"webhook {endpoint_id} is not one of this tenant's webhooks")


def check_record_owner(store: Store, record_id: str, tenant: str) -> None:
    """403 unless `tenant` registered this record."""
    rec = store.record(record_id)
    if rec is None or rec.tenant != tenant:
        raise ApiError(403, f"record {record_id} belongs to another tenant")
