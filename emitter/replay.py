"""Replay: the stored deliveries of a time window, re-sent in their events' original order (Svix's recover)."""

import sqlite3
import time
from collections.abc import Sequence

from emitter.outbox import STATUSES


def select(
    conn: sqlite3.Connection,
    since: float,
    until: float,
    endpoint_id: str | None = None,
    event_type: str | None = None,
    status: str | None = None,
) -> list[dict]:
    """Deliveries of events created in [since, until) (epoch seconds), oldest event first, optionally filtered."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: choose from {', '.join(STATUSES)}")
    where, params = ["e.created_at >= ?", "e.created_at < ?"], [since, until]
    for column, value in (("d.endpoint_id", endpoint_id), ("e.type", event_type), ("d.status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = conn.execute(
        "SELECT d.id, d.event_id, e.type, e.timestamp, d.endpoint_id, d.url, d.status, d.attempts"
        " FROM wh_deliveries d JOIN wh_events e ON e.id = d.event_id"
        f" WHERE {' AND '.join(where)} ORDER BY e.created_at, e.rowid, d.rowid",
        params,
    )
    keys = ("id", "event_id", "event_type", "event_timestamp", "endpoint_id", "url", "status", "attempts")
    return [dict(zip(keys, row)) for row in rows]


def requeue(conn: sqlite3.Connection, delivery_ids: Sequence[str], now: float | None = None) -> int:
    """Make each failed or delivered delivery due again with one more attempt, due times rising in order; uncommitted."""
    start = time.time() if now is None else now
    changed = 0
    for offset, delivery_id in enumerate(delivery_ids):
        changed += conn.execute(
            "UPDATE wh_deliveries SET status = 'pending', next_attempt_at = ?, delivered_at = NULL,"
            " max_attempts = attempts + 1 WHERE id = ? AND status IN ('failed', 'delivered')",
            (start + offset * 1e-6, delivery_id),
        ).rowcount
    return changed
