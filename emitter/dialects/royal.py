"""Royal dialect: Standard Webhooks / Svix signing, Svix's retry schedule and timeout (pure, no I/O)."""

import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from emitter import safejson
from emitter.dialects.keys import secret_list
from emitter.event import Event

NAME = "royal"
# Svix's schedule (docs.svix.com/retries): immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each
# counted from the failure before; entry 0 is the first attempt (no wait), entry n the wait after attempt n.
RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# Svix counts an attempt as failed unless a 2xx arrives within 15 s (docs.svix.com/retries).
TIMEOUT = 15.0
# Standard Webhooks' own replay window: a timestamp further than 5 minutes from now is refused.
TOLERANCE = 300.0
# A webhook-timestamp longer than this is refused unread (a float cannot hold a 400-digit integer).
MAX_STAMP_DIGITS = 20
USER_AGENT = "provsim-webhooks/0.1"

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SVIX_ID_HEADER = "svix-id"
SVIX_TIMESTAMP_HEADER = "svix-timestamp"
SVIX_SIGNATURE_HEADER = "svix-signature"


def render(event: Event) -> bytes:
    """Royal's envelope {"type", "data"} as compact UTF-8 JSON."""
    payload = {"type": event.type, "data": event.data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_secret(secret: str) -> None:
    """ValueError unless the standardwebhooks library accepts the secret as a key ("whsec_" + base64)."""
    try:
        Webhook(secret)
    except (ValueError, EmptyWebhookSecretError):
        raise ValueError(
            "a royal webhook secret must be 'whsec_' followed by non-empty base64 (new_secret() makes one)"
        ) from None


def signature(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: one "v1,<base64>" per secret, space-separated, signed by standardwebhooks."""
    when = datetime.fromtimestamp(timestamp, timezone.utc)
    data = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, when, data) for secret in secrets)


def sign_headers(
    secrets: str | Sequence[str],
    event_type: str,
    event_id: str,
    event_timestamp: str,
    delivery_id: str,
    body: bytes,
    now: float,
) -> dict[str, str]:
    """Dialect entry point: headers of one attempt, signed at `now` with every secret given (newest first)."""
    # The message id is the event id: Svix keeps it across retries and endpoints, and receivers dedupe on it.
    keys = secret_list(secrets)
    timestamp = int(now)
    signed = signature(keys, event_id, timestamp, body)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signed,
        SVIX_ID_HEADER: event_id,
        SVIX_TIMESTAMP_HEADER: str(timestamp),
        SVIX_SIGNATURE_HEADER: signed,
    }


def verify_request(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = TOLERANCE
) -> bool:
    """Whether the request's timestamp lies within `tolerance` of `now` and one v1 signature is this secret's."""
    # The library's verify() reads the wall clock, so the window is checked here against `now`, and the
    # expected signature still comes from the library's sign().
    msg_id = _header(headers, ID_HEADER, SVIX_ID_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER, SVIX_TIMESTAMP_HEADER)
    passed = _header(headers, SIGNATURE_HEADER, SVIX_SIGNATURE_HEADER)
    if not (msg_id and stamp and passed):
        return False
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_STAMP_DIGITS):
        return False  # not whole epoch seconds: signs, spaces, "_" and other digits int() takes are refused too
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        return False
    try:
        wanted = signature((secret,), msg_id, timestamp, body).encode("ascii")
    except (ValueError, OverflowError, OSError):  # a body that is not UTF-8, a timestamp no datetime holds
        return False
    return any(
        hmac.compare_digest(wanted, candidate.encode("utf-8", "surrogatepass"))
        for candidate in passed.split(" ")
        if candidate.startswith("v1,")
    )


def identify(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str | None]:
    """Dialect entry point: (webhook-id, the body's "type"); Standard Webhooks announces no other id."""
    event_type = None
    try:
        payload = safejson.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("type"), str):
        event_type = payload["type"]
    return _header(headers, ID_HEADER, SVIX_ID_HEADER), event_type


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    """The first of `names` present, looked up case-insensitively on plain dicts and multidicts alike."""
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in names:
        if lowered.get(name):
            return lowered[name]
    return None
