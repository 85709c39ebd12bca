"""A registered webhook endpoint: URL, secrets (with rotation's grace period), event filter and signing dialect."""

import base64
import dataclasses
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from emitter import dialects
from emitter.clock import iso_utc

DEFAULT_GRACE = 86400.0  # Svix keeps a rotated-out secret signing for 24 hours


def new_secret() -> str:
    """A fresh signing secret: "whsec_" + base64 of 32 random bytes (also a valid Standard Webhooks key)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


_generate_secret = new_secret  # rotate()'s new_secret parameter hides the function's name


def signing_secrets(secret: str, previous_secrets: Iterable[tuple[str, float]], now: float) -> tuple[str, ...]:
    """The current secret, then each previous one whose grace period has not ended at `now`."""
    return (secret, *(old for old, expires_at in previous_secrets if expires_at > now))


@dataclass(frozen=True)
class Endpoint:
    """Where to POST events, the secrets to sign them with, and which event types it wants (None = all)."""

    # tenant is the account the endpoint belongs to (Svix's "application"); None is the operator's own.
    # previous_secrets holds (secret, expires_at epoch seconds) pairs, newest first: secrets rotated out
    # that still sign deliveries until they expire, so receivers can switch over without a gap.

    id: str
    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] | None = None
    dialect: str = "tectra"
    persistent: bool = True
    created_at: str = ""
    previous_secrets: tuple[tuple[str, float], ...] = field(default=(), repr=False)
    tenant: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint URL {self.url!r} is not an http:// or https:// URL with a host")
        if not self.secret:
            raise ValueError(f"endpoint {self.url} has an empty secret")
        if self.events is not None and not isinstance(self.events, tuple):
            object.__setattr__(self, "events", tuple(self.events))
        previous = tuple((str(old), float(expires_at)) for old, expires_at in self.previous_secrets)
        object.__setattr__(self, "previous_secrets", previous)
        dialect = dialects.get(self.dialect)
        for secret in (self.secret, *(old for old, _ in previous)):
            dialect.check_secret(secret)

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to events of this type."""
        return self.events is None or event_type in self.events

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The secrets a delivery attempt at `now` is signed with, current first."""
        return signing_secrets(self.secret, self.previous_secrets, now)

    def rotate(
        self,
        new_secret: str | None = None,
        grace_seconds: float = DEFAULT_GRACE,
        now: float | None = None,
    ) -> "Endpoint":
        """This endpoint with a new secret (generated unless given); the old one signs on for grace_seconds."""
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds}")
        at = time.time() if now is None else now
        fresh = new_secret if new_secret is not None else _generate_secret()
        kept = ((self.secret, at + grace_seconds), *self.previous_secrets)
        previous = tuple((old, expires_at) for old, expires_at in kept if expires_at > at and old != fresh)
        return dataclasses.replace(self, secret=fresh, previous_secrets=previous)

    @classmethod
    def new(
        cls,
        url: str,
        secret: str | None = None,
        events: "tuple[str, ...] | list[str] | None" = None,
        dialect: str = "tectra",
        persistent: bool = True,
        tenant: str | None = None,
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
            tenant=tenant,
        )
