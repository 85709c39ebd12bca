"""Fires finished events at one receiver, in order, each signed by its dialect: what `provsim trigger` sends."""
from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from emitter import dialects
from emitter.event import Event


@dataclass(frozen=True)
class Fired:
    """One event sent: its type, the delivery id it carried, and the answer (status, or an error) and time."""

    event_type: str
    delivery_id: str
    status: int | None
    error: str | None
    ms: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def fire(events: Sequence[Event], url: str, secret: str, dialect: str, timeout: float = 30.0) -> list[Fired]:
    """POST each event to `url` in order, signed afresh; network failures come back as errors, never raised."""
    scheme = dialects.get(dialect)
    scheme.check_secret(secret)
    fired = []
    with httpx.Client(timeout=timeout) as client:
        for event in events:
            body = scheme.render(event)
            delivery_id = "dlv_" + secrets.token_hex(10)
            headers = scheme.sign_headers(secret, event.type, event.id, event.timestamp, delivery_id, body, time.time())
            started = time.perf_counter()
            try:
                status, error = client.post(url, content=body, headers=headers).status_code, None
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            fired.append(Fired(event.type, delivery_id, status, error, (time.perf_counter() - started) * 1000))
    return fired
