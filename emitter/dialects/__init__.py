"""Webhook dialects: the Dialect protocol every signing scheme follows, and lookup by name."""

from collections.abc import Mapping
from typing import Protocol

from emitter.dialects import tectra
from emitter.event import Event


class Dialect(Protocol):
    """A signing scheme: body shape, headers signed per attempt, request verification, retry policy."""

    # sign_headers runs once per attempt with that attempt's time, so a scheme that signs a
    # timestamp (Standard Webhooks signs "id.timestamp.body") signs every retry afresh.

    NAME: str
    RETRY_SCHEDULE: tuple[float, ...]
    TIMEOUT: float

    def render(self, event: Event) -> bytes:
        """The request body for an event; stored once so every retry sends identical bytes."""
        ...

    def sign_headers(
        self,
        secret: str,
        event_type: str,
        event_id: str,
        event_timestamp: str,
        delivery_id: str,
        body: bytes,
        now: float,
    ) -> dict[str, str]:
        """All request headers for one attempt, signatures included."""
        ...

    def verify_request(self, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        """Whether a received request carries a valid signature for this secret."""
        ...

    def identify(self, headers: Mapping[str, str], body: bytes) -> tuple[str | None, str | None]:
        """The (delivery id, event type) a received request announces, None where absent."""
        ...


_DIALECTS: dict[str, Dialect] = {tectra.NAME: tectra}


def names() -> tuple[str, ...]:
    """The names of the implemented dialects."""
    return tuple(_DIALECTS)


def get(name: str) -> Dialect:
    """The dialect called `name`; ValueError naming the known ones if there is none."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown webhook dialect {name!r}: use one of {', '.join(_DIALECTS)}") from None
