"""A Royal webhook receiver that verifies with the svix and standardwebhooks libraries, unchanged."""
from __future__ import annotations

from loopback_receiver import LoopbackReceiver
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


class RoyalReceiver(LoopbackReceiver):
    """Accepts a request only when both standardwebhooks (webhook-*) and svix (svix-*) verify it."""

    def __init__(self, secret: str):
        self._standard, self._svix = StandardWebhook(secret), SvixWebhook(secret)
        super().__init__(self._check, type_key="type", path="/webhooks/royal")

    def _check(self, headers, body: bytes) -> bool:
        """Both libraries accept the body with their own header names."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            self._standard.verify(body, {k: v for k, v in lowered.items() if k.startswith("webhook-")})
            self._svix.verify(body, {k: v for k, v in lowered.items() if k.startswith("svix-")})
        except Exception:
            return False
        return True
