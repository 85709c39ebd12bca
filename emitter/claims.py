"""Engine-side outbox queries: recover after a crash, find due lanes, claim deliveries, record outcomes."""

import json
import sqlite3
from dataclasses import dataclass

from emitter.endpoint import signing_secrets


@dataclass(frozen=True)
class Claim:
    """A delivery claimed for one attempt, with everything needed to sign and send it."""

    # secret and previous_secrets are the endpoint's as saved when the claim was made, so a rotation
    # reaches retries; for a delivery whose endpoint row is gone, the secret copied at enqueue time.

    delivery_id: str
    event_id: str
    event_type: str
    event_timestamp: str
    endpoint_id: str
    url: str
    secret: str
    dialect: str
    body: bytes
    attempt: int
    max_attempts: int
    previous_secrets: tuple[tuple[str, float], ...] = ()

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The secrets an attempt at `now` is signed with, current first."""
        return signing_secrets(self.secret, self.previous_secrets, now)


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt and the delivery state it leads to."""

    delivery_id: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float
    status: str
    next_attempt_at: float | None
    delivered_at: float | None


def recover(conn: sqlite3.Connection) -> int:
    """Put deliveries left 'delivering' (by a crash or a cancelled run) back to 'pending'; returns how many."""
    return conn.execute("UPDATE wh_deliveries SET status = 'pending' WHERE status = 'delivering'").rowcount


def pending_lanes(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    """Each endpoint with pending deliveries and its earliest next_attempt_at (one index seek per endpoint)."""
    lanes = []
    after = ""
    while row := conn.execute(
        "SELECT endpoint_id, next_attempt_at FROM wh_deliveries WHERE status = 'pending' AND endpoint_id > ?"
        " ORDER BY endpoint_id, next_attempt_at LIMIT 1",
        (after,),
    ).fetchone():
        lanes.append(row)
        after = row[0]
    return lanes


def claim(conn: sqlite3.Connection, endpoint_id: str, now: float, limit: int) -> tuple[list[Claim], float | None]:
    """Mark up to `limit` due rows of one endpoint 'delivering'; returns them and its next pending time."""
    rows = conn.execute(
        "SELECT d.id, d.event_id, e.type, e.timestamp, d.endpoint_id, d.url, COALESCE(p.secret, d.secret),"
        " d.dialect, d.body, d.attempts + 1, d.max_attempts, COALESCE(p.previous_secrets, '[]')"
        " FROM wh_deliveries d JOIN wh_events e ON e.id = d.event_id LEFT JOIN wh_endpoints p ON p.id = d.endpoint_id"
        " WHERE d.status = 'pending' AND d.endpoint_id = ? AND d.next_attempt_at <= ?"
        " ORDER BY d.next_attempt_at LIMIT ?",
        (endpoint_id, now, limit),
    ).fetchall()
    conn.executemany("UPDATE wh_deliveries SET status = 'delivering' WHERE id = ?", [(row[0],) for row in rows])
    (next_at,) = conn.execute(
        "SELECT MIN(next_attempt_at) FROM wh_deliveries WHERE status = 'pending' AND endpoint_id = ?",
        (endpoint_id,),
    ).fetchone()
    batch = [Claim(*row[:-1], tuple((old, expires_at) for old, expires_at in json.loads(row[-1]))) for row in rows]
    return batch, next_at


def record(conn: sqlite3.Connection, outcomes: list[Outcome]) -> None:
    """Write each attempt to wh_attempts and move its delivery to the outcome's status."""
    conn.executemany(
        "INSERT INTO wh_attempts (delivery_id, n, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
        [(o.delivery_id, o.attempt, o.at, o.status_code, o.error, o.duration_ms) for o in outcomes],
    )
    conn.executemany(
        "UPDATE wh_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, delivered_at = ? WHERE id = ?",
        [(o.status, o.attempt, o.next_attempt_at, o.delivered_at, o.delivery_id) for o in outcomes],
    )
