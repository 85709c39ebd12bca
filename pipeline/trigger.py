"""Fires finished events at one receiver, in order, each signed by its dialect: what `provsim trigger` sends."""
from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from emitter import dialects
from emitter.event import Event
from emitter.sender import SendResult


@dataclass
class Fired(SendResult):
    """One event sent: the answer (status, or an error, and the time), the event's type and its delivery id."""

    event_type: str = ""
    delivery_id: str = ""


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
            fired.append(Fired(status, error, (time.perf_counter() - started) * 1000, event.type, delivery_id))
    return fired
