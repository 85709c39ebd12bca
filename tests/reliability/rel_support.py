"""Reliability test support: provsim subprocesses that are always cleaned up, a receiver that fails on cue."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from soak import free_port, make_images, reap  # noqa: E402  (the soak tool's helpers, shared)

TECTRA_SECRET = "whsec_" + "cmVsaWFiaWxpdHktdGVjdHJhLXNlY3JldC0zMi1ieXRlcw=="
ROYAL_SECRET = "whsec_" + "cmVsaWFiaWxpdHktcm95YWwtc2VjcmV0LW9mLTMyLWJ5dGVz"
__all__ = ["ROOT", "TECTRA_SECRET", "ROYAL_SECRET", "free_port", "make_images", "reap", "Provsim", "provsim",
           "Receiver", "integrity", "deliveries"]


class Provsim:
    """A `provsim` command in a session of its own, its output read as it comes; leaving the `with` kills what is left."""

    def __init__(self, *args: str, preexec_fn=None):
        """Start `provsim ARGS` (preexec_fn runs in the child before exec)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=preexec_fn)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=lambda f=f, into=into: into.extend(f), daemon=True)
                         for f, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> Provsim:
        """The running command."""
        return self

    def __exit__(self, *exc) -> None:
        """Kill the command's process group if anything of it is still there."""
        reap(self.proc)

    def finish(self, timeout: float = 180) -> subprocess.CompletedProcess:
        """Wait for the command to end and return its output."""
        self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "".join(self.out), "".join(self.err))


def provsim(*args: str, timeout: float = 180, preexec_fn=None) -> subprocess.CompletedProcess:
    """Run a provsim command to its end (killed with its workers if it outlives `timeout`)."""
    with Provsim(*args, preexec_fn=preexec_fn) as cmd:
        return cmd.finish(timeout)


@dataclass
class Request:
    """One request a Receiver got, and how it answered."""

    delivery_id: str
    event: dict
    verified: bool
    status: int

    @property
    def type(self) -> str:
        """The event type, in either dialect's body."""
        return self.event.get("event") or self.event.get("type")


class Receiver:
    """A loopback webhook receiver for one dialect that answers 503 to the first `fail_first` tries of each delivery.

    It verifies Tectra requests as Tectra's docs show (hex HMAC of the body) and Royal requests with
    the standardwebhooks library. `start()` may come later than construction, on the port chosen then:
    until it does, connections to `url` are refused.
    """

    def __init__(self, dialect: str, secret: str, fail_first: int = 0, port: int | None = None):
        """A receiver for `dialect` on `port` (a free one by default), not listening yet."""
        self.dialect, self.secret, self.fail_first = dialect, secret, fail_first
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/{dialect}"
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        """Listen now."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            """Hands every POST to the receiver and sends its answer."""
            def do_POST(self):  # noqa: N802 (http.server naming)
                """Read the body, answer as the receiver decides."""
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(receiver._answer(self.headers, body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Keep quiet."""
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused again)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        """The receiver, listening."""
        return self.start()

    def __exit__(self, *exc) -> None:
        """Stop listening."""
        self.stop()

    def _answer(self, headers, body: bytes) -> int:
        """Record the request; 503 while its delivery is among its first tries, 401 if unsigned, else 200."""
        verified = self._verify(headers, body)
        delivery_id = headers.get("X-Tectra-Delivery") or headers.get("webhook-id") or ""
        with self._lock:
            tries = sum(1 for r in self.requests if r.delivery_id == delivery_id)
            status = 503 if tries < self.fail_first else (200 if verified else 401)
            self.requests.append(Request(delivery_id, json.loads(body), verified, status))
        return status

    def _verify(self, headers, body: bytes) -> bool:
        """The dialect's signature check."""
        if self.dialect == "tectra":
            expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, headers.get("X-Tectra-Signature", ""))
        try:
            Webhook(self.secret).verify(body, {k.lower(): v for k, v in headers.items() if k.lower().startswith("webhook-")})
        except Exception:
            return False
        return True

    def accepted(self, event_type: str | None = None) -> list[Request]:
        """Requests answered 200 (verified), of one event type when given."""
        with self._lock:
            return [r for r in self.requests if r.status == 200 and event_type in (None, r.type)]


def integrity(db: Path) -> list[str]:
    """PRAGMA integrity_check of a database, opened read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def deliveries(data: Path) -> list[dict]:
    """`provsim deliveries --json`: every delivery with its attempt log."""
    return json.loads(provsim("deliveries", "--data-dir", str(data), "--json").stdout)

