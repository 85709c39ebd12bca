"""Webhook dialects: the Dialect protocol every signing scheme follows, and lookup by name."""

from collections.abc import Mapping, Sequence
from typing import Protocol

from emitter.dialects import royal, tectra
from emitter.event import Event


class Dialect(Protocol):
    """A signing scheme: body shape, headers signed per attempt, request verification, retry policy."""

    # sign_headers runs once per attempt with that attempt's time, so a scheme that signs a
    # timestamp (Standard Webhooks signs "id.timestamp.body") signs every retry afresh. It gets the
    # endpoint's valid secrets newest first (more than one during a rotation's grace period); a scheme
    # with room for one signature signs with the newest.

    NAME: str
    RETRY_SCHEDULE: tuple[float, ...]
    TIMEOUT: float

    def render(self, event: Event) -> bytes:
        """The request body for an event; stored once so every retry sends identical bytes."""
        ...

    def check_secret(self, secret: str) -> None:
        """ValueError, in one line, if this scheme cannot sign with the secret."""
        ...

    def sign_headers(
        self,
        secrets: str | Sequence[str],
        event_type: str,
        event_id: str,
        event_timestamp: str,
        delivery_id: str,
        body: bytes,
        now: float,
    ) -> dict[str, str]:
        """All request headers for one attempt, signed with `secrets` (a lone string is one secret)."""
        ...

    def verify_request(self, secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        """Whether a received request carries a valid signature for this secret, fresh enough at `now`."""
        ...

    def identify(self, headers: Mapping[str, str], body: bytes) -> tuple[str | None, str | None]:
        """The (id, event type) a request announces: a delivery id, or a message id; None where absent."""
        ...


_DIALECTS: dict[str, Dialect] = {tectra.NAME: tectra, royal.NAME: royal}


def names() -> tuple[str, ...]:
    """The names of the implemented dialects."""
    return tuple(_DIALECTS)


def get(name: str) -> Dialect:
    """The dialect called `name`; ValueError naming the known ones if there is none."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown webhook dialect {name!r}: use one of {', '.join(_DIALECTS)}") from None
