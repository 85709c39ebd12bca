"""A threaded HTTP receiver on 127.0.0.1 that records every POST and judges it with a given verifier."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Delivery:
    """One request as the receiver saw it (headers look up case-insensitively)."""

    headers: Message
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        """The parsed body."""
        return json.loads(self.body)


class LoopbackReceiver:
    """Answers 200 when `verify(headers, body)` accepts a request, else 401, as the seeds' receivers do."""

    def __init__(self, verify: Callable[[Message, bytes], bool], type_key: str, path: str,
                 port: int = 0, delay: float = 0.0):
        self.type_key = type_key
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify(self.headers, body)
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.headers, body, ok))
                if delay:
                    time.sleep(delay)
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, event_type: str | None = None) -> list[Delivery]:
        """Verified deliveries, of one event type when given."""
        with self._lock:
            return [d for d in self.deliveries
                    if d.verified and (event_type is None or d.event[self.type_key] == event_type)]
