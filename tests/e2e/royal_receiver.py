"""A Royal webhook receiver that verifies with the svix and standardwebhooks libraries, unchanged."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


@dataclass
class RoyalDelivery:
    """One request and whether both libraries accepted it."""

    headers: dict
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        """The parsed body: {"type", "data"}."""
        return json.loads(self.body)


class RoyalReceiver:
    """ThreadingHTTPServer on 127.0.0.1: 200 when svix and standardwebhooks both verify, else 401."""

    def __init__(self, secret: str):
        self.deliveries: list[RoyalDelivery] = []
        self._lock = threading.Lock()
        receiver = self
        svix, standard = SvixWebhook(secret), StandardWebhook(secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    standard.verify(body, {k: v for k, v in headers.items() if k.startswith("webhook-")})
                    svix.verify(body, {k: v for k, v in headers.items() if k.startswith("svix-")})
                    ok = True
                except Exception:
                    ok = False
                with receiver._lock:
                    receiver.deliveries.append(RoyalDelivery(headers, body, ok))
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/royal"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "RoyalReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, event_type: str | None = None) -> list[RoyalDelivery]:
        """Verified deliveries, of one event type when given."""
        with self._lock:
            return [d for d in self.deliveries if d.verified and (event_type is None or d.event["type"] == event_type)]
