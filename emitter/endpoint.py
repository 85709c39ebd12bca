"""A registered webhook endpoint: URL, secret, event filter and signing dialect."""

import base64
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from emitter import dialects
from emitter.clock import iso_utc


def new_secret() -> str:
    """A fresh signing secret: "whsec_" + base64 of 32 random bytes (also a valid Standard Webhooks key)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class Endpoint:
    """Where to POST events, the secret to sign them with, and which event types it wants (None = all)."""

    id: str
    url: str
    secret: str
    events: tuple[str, ...] | None = None
    dialect: str = "tectra"
    persistent: bool = True
    created_at: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint URL {self.url!r} is not an http:// or https:// URL with a host")
        if not self.secret:
            raise ValueError(f"endpoint {self.url} has an empty secret")
        if self.events is not None and not isinstance(self.events, tuple):
            object.__setattr__(self, "events", tuple(self.events))
        dialects.get(self.dialect)

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to events of this type."""
        return self.events is None or event_type in self.events

    @classmethod
    def new(
        cls,
        url: str,
        secret: str | None = None,
        events: "tuple[str, ...] | list[str] | None" = None,
        dialect: str = "tectra",
        persistent: bool = True,
    ) -> "Endpoint":
        """A new endpoint with id "ep_<random>", a generated secret unless one is given, created now."""
        return cls(
            id="ep_" + secrets.token_hex(6),
            url=url,
            secret=secret if secret is not None else new_secret(),
            events=tuple(events) if events is not None else None,
            dialect=dialect,
            persistent=persistent,
            created_at=iso_utc(time.time()),
        )
