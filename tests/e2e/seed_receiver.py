"""A webhook receiver that verifies exactly as the Tectra seed's Python receiver does (stdlib only)."""
from __future__ import annotations

import hashlib
import hmac

from loopback_receiver import LoopbackReceiver


class SeedReceiver(LoopbackReceiver):
    """The seed's Flask receiver on 127.0.0.1: 401 on a missing or bad X-Tectra-Signature, else 200."""

    def __init__(self, secret: str, delay: float = 0.0, port: int = 0):
        self.secret = secret
        super().__init__(self._check, type_key="event", path="/webhooks/tectra", port=port, delay=delay)

    def _check(self, headers, body: bytes) -> bool:
        """A signature header is present and verifies."""
        signature = headers.get("X-Tectra-Signature", "")
        return bool(signature) and self.verify_signature(body, signature)

    def verify_signature(self, payload: bytes, signature: str) -> bool:
        """The seed's verify_signature, verbatim in logic."""
        expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
