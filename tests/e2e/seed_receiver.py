"""A webhook receiver that verifies exactly as the Tectra seed's Python receiver does (stdlib only)."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    """One request as the receiver saw it."""

    headers: dict
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        """The parsed body."""
        return json.loads(self.body)


class SeedReceiver:
    """ThreadingHTTPServer on 127.0.0.1 answering like the seed: 401 on a bad signature, else 200."""

    def __init__(self, secret: str, delay: float = 0.0, port: int = 0):
        self.secret = secret
        self.delay = delay
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                signature = self.headers.get("X-Tectra-Signature", "")
                ok = bool(signature) and receiver.verify_signature(body, signature)
                with receiver._lock:
                    receiver.deliveries.append(Delivery(dict(self.headers), body, ok))
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b'{"received": true}' if ok else b'{"error": "Invalid signature"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/tectra"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verify_signature(self, payload: bytes, signature: str) -> bool:
        """The seed's verify_signature, verbatim in logic."""
        expected = hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def __enter__(self) -> "SeedReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, event_type: str | None = None) -> list[Delivery]:
        """Verified deliveries, of one event type when given."""
        with self._lock:
            return [d for d in self.deliveries if d.verified and (event_type is None or d.event["event"] == event_type)]
