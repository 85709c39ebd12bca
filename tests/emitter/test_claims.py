"""Engine-side queries: recovery, lane discovery, claiming in due order, recording outcomes."""

import sqlite3

from emitter import claims, outbox
from emitter.claims import Outcome
from emitter.dialects import tectra
from emitter.endpoint import Endpoint
from emitter.event import Event


def _enqueue(conn: sqlite3.Connection, ep: Endpoint, count: int) -> list[str]:
    """Enqueue `count` events for one endpoint and return their delivery ids."""
    ids = []
    for i in range(count):
        ids += outbox.enqueue(conn, Event.new("content.signed", {"i": i}), [ep])
    return ids


def test_pending_lanes_lists_each_endpoint_with_its_earliest_due_time(conn: sqlite3.Connection) -> None:
    a, b, done = (Endpoint.new(f"http://127.0.0.1:1/{n}") for n in "abc")
    for delivery_id, due in zip(_enqueue(conn, a, 3), (30.0, 20.0, 25.0)):
        conn.execute("UPDATE wh_deliveries SET next_attempt_at = ? WHERE id = ?", (due, delivery_id))
    for delivery_id, due in zip(_enqueue(conn, b, 2), (50.0, 40.0)):
        conn.execute("UPDATE wh_deliveries SET next_attempt_at = ? WHERE id = ?", (due, delivery_id))
    (finished,) = _enqueue(conn, done, 1)
    claims.record(conn, [Outcome(finished, 1, 1.0, 200, None, 1.0, "delivered", None, 1.0)])
    assert sorted(claims.pending_lanes(conn)) == sorted([(a.id, 20.0), (b.id, 40.0)])


def test_claim_takes_due_rows_oldest_first_up_to_limit(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    ids = _enqueue(conn, ep, 4)
    for n, delivery_id in enumerate(ids):
        conn.execute("UPDATE wh_deliveries SET next_attempt_at = ? WHERE id = ?", (10.0 - n, delivery_id))
    conn.execute("UPDATE wh_deliveries SET next_attempt_at = 99.0 WHERE id = ?", (ids[0],))
    batch, next_at = claims.claim(conn, ep.id, now=20.0, limit=2)
    assert [c.delivery_id for c in batch] == [ids[3], ids[2]]
    assert next_at == 9.0
    first = batch[0]
    assert (first.url, first.secret, first.dialect, first.attempt, first.max_attempts) == (
        ep.url, ep.secret, "tectra", 1, 3,
    )
    assert first.event_type == "content.signed" and first.body.startswith(b'{"event":"content.signed"')
    assert tectra.render(Event(first.event_id, "content.signed", {"i": 3}, first.event_timestamp)) == first.body
    assert outbox.summary(conn)["delivering"] == 2
    rest, next_at = claims.claim(conn, ep.id, now=20.0, limit=10)
    assert [c.delivery_id for c in rest] == [ids[1]]
    assert next_at == 99.0


def test_claim_with_zero_limit_only_reports_the_next_time(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    _enqueue(conn, ep, 1)
    batch, next_at = claims.claim(conn, ep.id, now=1e12, limit=0)
    assert batch == [] and next_at is not None and next_at < 1e12


def test_recover_puts_delivering_back_to_pending(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    _enqueue(conn, ep, 3)
    claims.claim(conn, ep.id, now=1e12, limit=2)
    assert claims.recover(conn) == 2
    assert outbox.summary(conn)["pending"] == 3


def test_record_writes_attempts_and_statuses(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a")
    ok, retry = _enqueue(conn, ep, 2)
    claims.record(
        conn,
        [
            Outcome(ok, 1, 10.0, 204, None, 2.0, "delivered", None, 10.1),
            Outcome(retry, 1, 10.0, None, "timeout after 30s", 30000.0, "pending", 70.0, None),
        ],
    )
    rows = dict(
        (row[0], row[1:]) for row in conn.execute("SELECT id, status, attempts, next_attempt_at FROM wh_deliveries")
    )
    assert rows == {ok: ("delivered", 1, None), retry: ("pending", 1, 70.0)}
    attempts = set(conn.execute("SELECT delivery_id, n, status_code, error FROM wh_attempts"))
    assert attempts == {(ok, 1, 204, None), (retry, 1, None, "timeout after 30s")}


def test_claim_signs_with_the_endpoints_current_secrets_not_the_enqueued_copy(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a", dialect="royal")
    outbox.save_endpoint(conn, ep)
    _enqueue(conn, ep, 1)
    rotated = outbox.rotate_secret(conn, ep.id, grace_seconds=3600, now=1000.0)
    (job,), _ = claims.claim(conn, ep.id, now=1e12, limit=1)
    assert (job.secret, job.previous_secrets) == (rotated.secret, ((ep.secret, 4600.0),))
    assert job.signing_secrets(4000.0) == (rotated.secret, ep.secret)
    assert job.signing_secrets(5000.0) == (rotated.secret,)


def test_claim_falls_back_to_the_enqueued_secret_once_the_endpoint_is_removed(conn: sqlite3.Connection) -> None:
    ep = Endpoint.new("http://127.0.0.1:1/a", dialect="royal")
    outbox.save_endpoint(conn, ep)
    (dlv,) = _enqueue(conn, ep, 1)
    outbox.rotate_secret(conn, ep.id)
    outbox.remove_endpoint(conn, ep.id)
    assert outbox.retry_delivery(conn, dlv)
    (job,), _ = claims.claim(conn, ep.id, now=1e12, limit=1)
    assert (job.secret, job.previous_secrets, job.dialect) == (ep.secret, (), "royal")
