"""Outbox: schema, enqueue inside the caller's transaction, idempotency, filters, endpoints, delivery log."""

import sqlite3
import time
from pathlib import Path

import pytest

from emitter import claims, outbox
from emitter.claims import Outcome
from emitter.dialects import tectra
from emitter.endpoint import Endpoint
from emitter.event import Event


def _event(key: str | None = None, type: str = "content.signed") -> Event:
    """A small event of the given type."""
    return Event.new(type, {"record_id": "r1"}, timestamp="2025-06-14T09:32:00Z", idempotency_key=key)


def test_connect_sets_pragmas(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10000,)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_init_schema_is_idempotent_and_prefixed(conn: sqlite3.Connection) -> None:
    outbox.init_schema(conn)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"wh_endpoints", "wh_events", "wh_deliveries", "wh_attempts"}


def test_enqueue_one_pending_delivery_per_wanting_endpoint(conn: sqlite3.Connection) -> None:
    all_events = Endpoint.new("http://127.0.0.1:1/a")
    signed_only = Endpoint.new("http://127.0.0.1:1/b", events=["content.signed"])
    verified_only = Endpoint.new("http://127.0.0.1:1/c", events=["content.verified"])
    event = _event()
    ids = outbox.enqueue(conn, event, [all_events, signed_only, verified_only])
    conn.commit()
    assert len(ids) == 2 and all(i.startswith("dlv_") for i in ids)
    deliveries = outbox.list_deliveries(conn)
    assert {d["endpoint_id"] for d in deliveries} == {all_events.id, signed_only.id}
    assert {d["status"] for d in deliveries} == {"pending"}
    assert all(d["event_id"] == event.id and d["event_type"] == "content.signed" for d in deliveries)
    bodies = {row[0] for row in conn.execute("SELECT body FROM wh_deliveries")}
    assert bodies == {tectra.render(event)}


def test_enqueue_does_not_commit(db_path: Path, conn: sqlite3.Connection) -> None:
    outbox.enqueue(conn, _event(), [Endpoint.new("http://127.0.0.1:1/a")])
    other = outbox.connect(db_path)
    try:
        assert outbox.summary(other)["total"] == 0
        conn.commit()
        assert outbox.summary(other)["pending"] == 1
    finally:
        other.close()


def test_rollback_leaves_nothing(db_path: Path, conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE state (v TEXT)")
    conn.execute("INSERT INTO state VALUES ('signed')")
    outbox.enqueue(conn, _event(), [Endpoint.new("http://127.0.0.1:1/a")])
    conn.rollback()
    assert conn.execute("SELECT COUNT(*) FROM state").fetchone() == (0,)
    assert outbox.summary(conn)["total"] == 0
    assert conn.execute("SELECT COUNT(*) FROM wh_events").fetchone() == (0,)


def test_same_idempotency_key_enqueues_once(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    assert len(outbox.enqueue(conn, _event("batch-1"), [ep])) == 1
    assert outbox.enqueue(conn, _event("batch-1"), [ep]) == []
    assert len(outbox.enqueue(conn, _event("batch-2"), [ep])) == 1
    assert outbox.summary(conn)["total"] == 2


def test_events_without_key_are_all_enqueued(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    outbox.enqueue(conn, _event(), [ep])
    outbox.enqueue(conn, _event(), [ep])
    assert outbox.summary(conn)["total"] == 2


def test_same_event_twice_enqueues_once(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    event = _event()
    outbox.enqueue(conn, event, [ep])
    assert outbox.enqueue(conn, event, [ep]) == []


def test_event_nobody_wants_is_recorded_without_deliveries(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a", events=["batch.anchored"])
    assert outbox.enqueue(conn, _event("k"), [ep]) == []
    assert conn.execute("SELECT COUNT(*) FROM wh_events").fetchone() == (1,)


def test_endpoint_crud(conn: sqlite3.Connection) -> None:
    kept = Endpoint.new("http://127.0.0.1:1/kept", events=["content.signed"])
    passing = Endpoint.new("http://127.0.0.1:1/passing", persistent=False)
    outbox.save_endpoint(conn, kept)
    outbox.save_endpoint(conn, passing)
    assert outbox.list_endpoints(conn) == [kept]
    assert set(outbox.list_endpoints(conn, persistent_only=False)) == {kept, passing}
    assert outbox.get_endpoint(conn, kept.id) == kept
    assert outbox.get_endpoint(conn, "http://127.0.0.1:1/passing") == passing
    assert outbox.get_endpoint(conn, "ep_missing") is None
    assert outbox.remove_endpoint(conn, kept.id)
    assert not outbox.remove_endpoint(conn, kept.id)
    assert outbox.list_endpoints(conn) == []


def test_removing_an_endpoint_fails_its_pending_deliveries(conn: sqlite3.Connection) -> None:
    gone, staying = Endpoint.new("http://127.0.0.1:1/a"), Endpoint.new("http://127.0.0.1:1/b")
    outbox.save_endpoint(conn, gone)
    outbox.enqueue(conn, _event(), [gone, staying])
    outbox.remove_endpoint(conn, gone.id)
    assert [d["status"] for d in outbox.list_deliveries(conn, endpoint_id=gone.id)] == ["failed"]
    assert [d["status"] for d in outbox.list_deliveries(conn, endpoint_id=staying.id)] == ["pending"]


def test_list_deliveries_filters_and_attempt_log(conn: sqlite3.Connection) -> None:
    a, b = Endpoint.new("http://127.0.0.1:1/a"), Endpoint.new("http://127.0.0.1:1/b")
    first, second = _event(), _event(type="batch.anchored")
    (first_a, first_b) = outbox.enqueue(conn, first, [a, b])
    outbox.enqueue(conn, second, [a])
    claims.record(conn, [Outcome(first_a, 1, 100.0, 200, None, 3.5, "delivered", None, 100.5)])
    assert [d["id"] for d in outbox.list_deliveries(conn, status="delivered")] == [first_a]
    assert len(outbox.list_deliveries(conn, endpoint_id=a.id)) == 2
    assert {d["id"] for d in outbox.list_deliveries(conn, event_ids=[first.id])} == {first_a, first_b}
    assert outbox.list_deliveries(conn, event_ids=[]) == []
    assert [d["id"] for d in outbox.list_deliveries(conn, delivery_ids=[first_b])] == [first_b]
    (delivered,) = outbox.list_deliveries(conn, status="delivered")
    assert delivered["attempts"] == [{"n": 1, "at": 100.0, "status_code": 200, "error": None, "duration_ms": 3.5}]
    assert delivered["delivered_at"] == 100.5 and delivered["url"] == a.url


def test_retry_delivery(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    (dlv,) = outbox.enqueue(conn, _event(), [ep])
    assert not outbox.retry_delivery(conn, dlv)
    assert not outbox.retry_delivery(conn, "dlv_missing")
    claims.record(conn, [Outcome(dlv, 3, 1.0, 500, None, 1.0, "failed", None, None)])
    assert outbox.retry_delivery(conn, dlv)
    (row,) = conn.execute("SELECT status, attempts, max_attempts FROM wh_deliveries").fetchall()
    assert row == ("pending", 3, 4)


def test_summary_counts_every_status(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    kept = _event()
    (dlv,) = outbox.enqueue(conn, kept, [ep])
    outbox.enqueue(conn, _event(), [ep])
    claims.record(conn, [Outcome(dlv, 1, 1.0, 200, None, 1.0, "delivered", None, 2.0)])
    assert outbox.summary(conn) == {"pending": 1, "delivering": 0, "delivered": 1, "failed": 0, "total": 2}
    assert outbox.summary(conn, event_ids=[kept.id])["total"] == 1


OLD_ENDPOINTS_TABLE = """CREATE TABLE wh_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT,
    dialect TEXT NOT NULL,
    persistent INTEGER NOT NULL,
    created_at TEXT NOT NULL
)"""


def test_init_schema_adds_previous_secrets_to_an_older_database(tmp_path: Path) -> None:
    conn = outbox.connect(tmp_path / "old.db")
    try:
        conn.execute(OLD_ENDPOINTS_TABLE)
        conn.execute(
            "INSERT INTO wh_endpoints VALUES ('ep_old', 'http://127.0.0.1:1/a', 'whsec_x', NULL, 'tectra', 1, 't')"
        )
        conn.commit()
        outbox.init_schema(conn)
        outbox.init_schema(conn)
        (ep,) = outbox.list_endpoints(conn)
        assert (ep.id, ep.secret, ep.previous_secrets) == ("ep_old", "whsec_x", ())
        rotated = outbox.rotate_secret(conn, "ep_old", "whsec_y", grace_seconds=60, now=100.0)
        assert outbox.get_endpoint(conn, "ep_old") == rotated
    finally:
        conn.close()


def test_rotate_secret_persists_uncommitted_and_returns_the_endpoint(db_path: Path, conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a", dialect="royal")
    outbox.save_endpoint(conn, ep)
    conn.commit()
    rotated = outbox.rotate_secret(conn, ep.id, grace_seconds=3600)
    assert rotated.secret != ep.secret
    ((old, expires_at),) = rotated.previous_secrets
    assert old == ep.secret and 3590 < expires_at - time.time() <= 3600
    assert outbox.get_endpoint(conn, ep.id) == rotated
    other = outbox.connect(db_path)
    try:
        assert outbox.get_endpoint(other, ep.id) == ep
        conn.commit()
        assert outbox.get_endpoint(other, ep.id) == rotated
    finally:
        other.close()


def test_rotate_secret_of_an_unknown_endpoint_is_a_lookup_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(LookupError, match="no webhook endpoint with id 'ep_missing'"):
        outbox.rotate_secret(conn, "ep_missing")


def test_rotate_secret_checks_the_new_secret_against_the_dialect(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a", dialect="royal")
    outbox.save_endpoint(conn, ep)
    with pytest.raises(ValueError, match="royal webhook secret"):
        outbox.rotate_secret(conn, ep.id, "whsec_a")
    assert outbox.get_endpoint(conn, ep.id) == ep
