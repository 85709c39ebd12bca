"""The finished event handed to the emitter: type, JSON data, timestamp and optional idempotency key."""

import time
import uuid
from dataclasses import dataclass

from emitter.clock import iso_utc


@dataclass(frozen=True)
class Event:
    """One event to announce to every endpoint that wants its type."""

    id: str
    type: str
    data: dict
    timestamp: str
    idempotency_key: str | None = None

    @classmethod
    def new(
        cls,
        type: str,
        data: dict,
        timestamp: str | None = None,
        idempotency_key: str | None = None,
    ) -> "Event":
        """A new event with id "evt_<uuid4 hex>", stamped now unless a timestamp is given."""
        return cls(
            id="evt_" + uuid.uuid4().hex,
            type=type,
            data=data,
            timestamp=timestamp if timestamp is not None else iso_utc(time.time()),
            idempotency_key=idempotency_key,
        )
