"""Tests of the Flask receiver as its authors would write them: provsim's fixtures against the running app."""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from PIL import Image
from werkzeug.serving import make_server

from app import create_app


@dataclass
class Served:
    """The app under test, where it listens, and the secret it checks signatures with."""

    app: Flask
    url: str
    secret: str

    @property
    def handled(self) -> list[dict]:
        """The events the app handled, in order."""
        return self.app.extensions["handled"]


@pytest.fixture
def served():
    """The receiver with a fresh secret, served on 127.0.0.1 from a thread until the test ends."""
    secret = "whsec_" + secrets.token_hex(24)
    app = create_app(secret)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Served(app, f"http://127.0.0.1:{server.server_port}/webhooks/tectra", secret)
    server.shutdown()
    thread.join(10)


def make_images(directory: Path, count: int) -> list[Path]:
    """Distinct small JPEGs of random colour blocks."""
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        path = directory / f"photo_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).resize((96, 64)).save(path)
        paths.append(path)
    return paths


def test_every_signed_and_anchored_event_is_handled(provsim_sim, served, tmp_path):
    provsim_sim.register(served.url, served.secret)
    report = provsim_sim.run(make_images(tmp_path, 3))
    assert report.exit_code == 0
    ids = {rec.id for rec in report.registered}
    signed = {e["data"]["record_id"] for e in served.handled if e["event"] == "content.signed"}
    anchored = {rid for e in served.handled if e["event"] == "batch.anchored" for rid in e["data"]["record_ids"]}
    assert signed == ids and anchored == ids


def test_a_tampered_copy_is_handled_as_not_authentic(provsim_sim, served):
    provsim_sim.register(served.url, served.secret)
    fired = provsim_sim.trigger("tectra.verify-tampered")
    assert all(f.ok for f in fired)
    assert [e["event"] for e in served.handled] == ["content.signed", "batch.anchored", "content.verified"]
    assert served.handled[-1]["data"]["authentic"] is False


def test_a_bad_signature_gets_401_and_is_not_handled(provsim_sim, served):
    provsim_sim.register(served.url, "whsec_not-the-receivers-secret")
    assert [f.status for f in provsim_sim.trigger("content.signed")] == [401]
    assert served.handled == []
