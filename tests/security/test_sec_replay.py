"""Replay windows at the reference receiver: Royal's 5 minutes both ways; Tectra's event-time stamps are not refused."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from emitter.dialects import royal, tectra
from emitter.endpoint import new_secret
from emitter.receiver import Receiver

NOW = 1_750_000_000.0
ROYAL_BODY = b'{"type":"provenance.registration.complete","data":{"id":"r1"}}'
TECTRA_BODY = b'{"event":"content.signed","timestamp":"2025-06-15T15:00:40Z","data":{"record_id":"r1"}}'


class StoppedClock:
    """A clock that always reads the same time (NOW unless told)."""

    time_scale = 1.0

    def __init__(self, at: float = NOW):
        self.at = at

    def now(self) -> float:
        """The time it is stopped at."""
        return self.at


def _exchange(receiver: Receiver, requests: list[tuple[dict, bytes]]) -> list[int]:
    """Start the receiver on 127.0.0.1, POST each (headers, body), stop it; the statuses."""
    async def main() -> list[int]:
        """Run the exchange on one loop."""
        port = await receiver.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                return [(await client.post("/hook", content=body, headers=headers)).status_code
                        for headers, body in requests]
        finally:
            await receiver.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("offset, status", [(-301, 401), (-299, 200), (0, 200), (299, 200), (301, 401)])
def test_royal_timestamps_are_held_to_five_minutes_of_the_receivers_clock(offset, status):
    secret = new_secret()
    headers = royal.sign_headers(secret, "provenance.registration.complete", f"msg_{offset}", "", "", ROYAL_BODY,
                                 NOW + offset)
    assert _exchange(Receiver(secret, dialect="royal", clock=StoppedClock()), [(headers, ROYAL_BODY)]) == [status]


def test_a_stale_royal_request_is_refused_even_with_a_valid_signature_under_svix_names():
    secret = new_secret()
    signed = royal.sign_headers(secret, "provenance.registration.complete", "msg_svix", "", "", ROYAL_BODY, NOW - 301)
    svix_only = {k: v for k, v in signed.items() if not k.startswith("webhook-")}
    fresh = royal.sign_headers(secret, "provenance.registration.complete", "msg_ok", "", "", ROYAL_BODY, NOW - 299)
    svix_fresh = {k: v for k, v in fresh.items() if not k.startswith("webhook-")}
    statuses = _exchange(Receiver(secret, dialect="royal", clock=StoppedClock()),
                         [(svix_only, ROYAL_BODY), (svix_fresh, ROYAL_BODY)])
    assert statuses == [401, 200]


def test_a_royal_timestamp_moved_back_into_the_window_breaks_the_signature():
    secret = new_secret()
    stale = royal.sign_headers(secret, "provenance.registration.complete", "msg_moved", "", "", ROYAL_BODY, NOW - 600)
    moved = {k: (str(int(NOW)) if k.endswith("timestamp") else v) for k, v in stale.items()}
    assert _exchange(Receiver(secret, dialect="royal", clock=StoppedClock()), [(moved, ROYAL_BODY)]) == [401]


@pytest.mark.parametrize("later", [0, 301, 360, 86_400])
def test_tectra_retries_of_an_old_event_are_accepted(later):
    # The body's timestamp and X-Tectra-Timestamp are the event's time; retries come 1 and 5 minutes later,
    # manual ones any time: refusing on them would refuse honest deliveries.
    secret = new_secret()
    stamp = "2025-06-15T15:00:40Z"  # NOW - 6 minutes, as in the body
    headers = tectra.headers(secret, "content.signed", f"dlv_{later}", stamp, TECTRA_BODY)
    receiver = Receiver(secret, clock=StoppedClock(NOW + later))
    assert _exchange(receiver, [(headers, TECTRA_BODY)]) == [200]
