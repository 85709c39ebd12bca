"""Tectra dialect: compact JSON body, X-Tectra-* headers, hex HMAC-SHA256 of the raw body (pure, no I/O)."""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from emitter.dialects.keys import secret_list
from emitter.event import Event

NAME = "tectra"
RETRY_SCHEDULE = (0.0, 60.0, 300.0)
TIMEOUT = 30.0
USER_AGENT = "provsim-webhooks/0.1"

SIGNATURE_HEADER = "X-Tectra-Signature"
EVENT_HEADER = "X-Tectra-Event"
DELIVERY_HEADER = "X-Tectra-Delivery"
TIMESTAMP_HEADER = "X-Tectra-Timestamp"


def render(event: Event) -> bytes:
    """The body {"event", "timestamp", "data"} as compact UTF-8 JSON."""
    payload = {"event": event.type, "timestamp": event.timestamp, "data": event.data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_secret(secret: str) -> None:
    """ValueError if the secret is empty; Tectra keys the HMAC with any non-empty string."""
    if not secret:
        raise ValueError("a tectra webhook secret must not be empty")


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the body keyed with the secret's UTF-8 bytes, "whsec_" prefix included."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is this body's signature under `secret` (constant-time compare)."""
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def headers(secret: str, event_type: str, delivery_id: str, event_timestamp: str, body: bytes) -> dict[str, str]:
    """The headers of one Tectra delivery request."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: event_timestamp,
    }


def sign_headers(
    secrets: str | Sequence[str],
    event_type: str,
    event_id: str,
    event_timestamp: str,
    delivery_id: str,
    body: bytes,
    now: float,
) -> dict[str, str]:
    """Dialect entry point: signed with the newest secret only; event id and attempt time do not enter."""
    # X-Tectra-Signature holds one hex digest, so during a rotation receivers must switch to the new
    # secret at once: the grace period's older secrets are not used by this dialect.
    return headers(secret_list(secrets)[0], event_type, delivery_id, event_timestamp, body)


def verify_request(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Dialect entry point: check X-Tectra-Signature over the raw body; `now` is not used, on purpose.

    Tectra signs the body alone, and the timestamp it carries (the body's and X-Tectra-Timestamp) is the
    event's time, not the attempt's: retries legitimately arrive up to 6 minutes after it (1 then 5
    minutes apart), and a manual retry any time later. Refusing old timestamps would refuse honest
    retries, and the unsigned header proves nothing, so no replay window applies: receivers dedupe
    on X-Tectra-Delivery instead.
    """
    signature = _header(headers, SIGNATURE_HEADER)
    return bool(signature) and verify(secret, body, signature)


def identify(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str | None]:
    """Dialect entry point: (X-Tectra-Delivery, X-Tectra-Event) of a received request."""
    return _header(headers, DELIVERY_HEADER), _header(headers, EVENT_HEADER)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works on plain dicts and multidicts alike."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
