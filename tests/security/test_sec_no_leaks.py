"""No secret in output: the real commands that handle webhook secrets, API keys and the signing key never print them."""
from __future__ import annotations

import json
import socket
import stat
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sec_support import ThreadedReceiver, free_port, leaks, pem_body, provsim, start_provsim, stop

from emitter.dialects import royal, tectra
from emitter.endpoint import new_secret

TENANT_BODY = b'{"event":"content.signed","timestamp":"2025-06-14T09:32:00Z","data":{"record_id":"r1"}}'
HONEST_BODY = b'{"event":"content.signed","timestamp":"2025-06-14T09:32:00Z","data":{"record_id":"r2"}}'


def make_images(directory: Path, count: int, seed: int) -> Path:
    """`count` distinct small JPEGs in a new directory."""
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        blocks = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(blocks).resize((96, 64), Image.NEAREST).save(directory / f"img_{i}.jpg", quality=90)
    return directory


def wait_for_port(port: int, proc, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port; AssertionError if the process ends first."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the command ended early: {proc.communicate()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listened on port {port} within {timeout}s"
            time.sleep(0.1)


def output(proc) -> str:
    """A finished command's stdout and stderr together."""
    return proc.stdout + proc.stderr


def test_run_retry_and_deliveries_never_print_the_secrets(tmp_path: Path):
    data = tmp_path / "state"
    flaky, dead = new_secret(), new_secret()
    receiver = ThreadedReceiver(flaky, fail_first=2)  # the first two deliveries get 500: retries, error lines
    closed = f"http://127.0.0.1:{free_port()}/hook"
    try:
        run = provsim("run", str(make_images(tmp_path / "a", 2, seed=1)), "--endpoint", receiver.url,
                      "--secret", flaky, "--endpoint", closed, "--secret", dead, "--time-scale", "0.001",
                      "--batch-size", "2", "--data-dir", str(data), check=False)
        as_json = provsim("run", str(make_images(tmp_path / "b", 1, seed=2)), "--endpoint", closed,
                          "--secret", dead, "--time-scale", "0.001", "--batch-size", "1", "--data-dir", str(data),
                          "--json", check=False)
        failed = json.loads(provsim("deliveries", "--status", "failed", "--json", "--data-dir", str(data)).stdout)
        listed = provsim("deliveries", "--data-dir", str(data))
        retried = provsim("retry", failed[0]["id"], "--time-scale", "0.001", "--data-dir", str(data), check=False)
    finally:
        receiver.close()
    assert run.returncode == 1 and as_json.returncode == 1, "deliveries to the closed port fail"
    assert any(r.verified for r in receiver.receiver.received) and receiver.receiver.received[0].verified
    secrets = {"flaky": flaky, "dead": dead, "signing key": pem_body(data / "keys" / "production.pem"),
               "watermark key": (data / "keys" / "watermark.key").read_bytes().hex()}
    for name, proc in (("run", run), ("run --json", as_json), ("deliveries", listed), ("retry", retried)):
        assert leaks(output(proc), secrets) == [], name
    assert leaks(json.dumps(failed), secrets) == []


def test_endpoint_add_shows_its_generated_secret_once_and_nothing_else_does(tmp_path: Path):
    data = tmp_path / "state"
    url = f"http://127.0.0.1:{free_port()}/hook"
    added = provsim("endpoint", "add", url, "--data-dir", str(data))
    secret = next(word for word in added.stdout.split() if word.startswith("whsec_"))
    assert output(added).count(secret) == 1
    royal_added = json.loads(provsim("endpoint", "add", url, "--dialect", "royal", "--json",
                                     "--data-dir", str(data)).stdout)
    secrets = {"tectra": secret, "royal": royal_added["secret"],
               "signing key": pem_body(data / "keys" / "production.pem")}
    # Royal's schedule runs to 10 hours: scaled by 1e-5 its 8 attempts still end within two seconds.
    run = provsim("run", str(make_images(tmp_path / "m", 1, seed=3)), "--time-scale", "0.00001", "--batch-size", "1",
                  "--data-dir", str(data), "--json", check=False)
    failed = json.loads(provsim("deliveries", "--json", "--data-dir", str(data)).stdout)
    shown = [provsim("endpoint", "list", "--data-dir", str(data)),
             provsim("endpoint", "list", "--json", "--data-dir", str(data)),
             provsim("deliveries", "--json", "--data-dir", str(data)),
             provsim("retry", failed[0]["id"], "--time-scale", "0.00001", "--data-dir", str(data), check=False), run]
    assert run.returncode == 1 and failed
    for proc in shown:
        assert leaks(output(proc), secrets) == [], proc.args[3:5]


@pytest.mark.parametrize("dialect", ["tectra", "royal"])
def test_listen_prints_neither_its_secret_nor_the_signatures_forgers_needed(tmp_path: Path, dialect: str):
    secret, forger = new_secret(), new_secret()
    dump = tmp_path / "dump.jsonl"
    port = free_port()
    proc = start_provsim("listen", "--port", str(port), "--secret", secret, "--dialect", dialect, "--dump", str(dump))
    expected, statuses = [], []
    try:
        wait_for_port(port, proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for n, body in enumerate([TENANT_BODY, b'{"forged": true}', b"not json", b""]):
                now = time.time()
                honest = _headers(dialect, secret, body, now, n)
                replayed = _headers(dialect, secret, body + b" ", now, n)  # a true signature of another body
                for headers in (_headers(dialect, forger, body, now, n),  # the wrong secret
                                {**honest, **{k: v for k, v in replayed.items() if "ignature" in k}},
                                {k: v for k, v in honest.items() if "ignature" not in k}):  # none at all
                    statuses.append(client.post("/hook", content=body, headers=headers).status_code)
                expected.append(_signature_value(dialect, honest))
            statuses.append(client.post("/hook", content=HONEST_BODY,
                                        headers=_headers(dialect, secret, HONEST_BODY, time.time(), 9)).status_code)
    finally:
        out, err = stop(proc)
    assert statuses == [401] * 12 + [200]
    secrets = {"secret": secret, **{f"signature {i}": sig for i, sig in enumerate(expected)}}
    assert "INVALID SIGNATURE" in out and "signature ok" in out
    assert leaks(out + err, secrets) == []
    assert leaks(dump.read_text(), secrets) == []


def _headers(dialect: str, secret: str, body: bytes, now: float, n: int) -> dict:
    """The headers a sender holding `secret` puts on `body`."""
    module = tectra if dialect == "tectra" else royal
    return module.sign_headers(secret, "content.signed", f"evt_{n}", "2025-06-14T09:32:00Z", f"dlv_{n}", body, now)


def _signature_value(dialect: str, headers: dict) -> str:
    """The part of a signature header a forger would need: the hex digest, or the base64 after "v1,"."""
    return headers["X-Tectra-Signature"] if dialect == "tectra" else headers["webhook-signature"].split(",", 1)[1]


def test_serve_logs_no_api_key_webhook_secret_or_signing_key(tmp_path: Path):
    data = tmp_path / "state"
    acme = provsim("apikey", "create", "--tenant", "acme", "--data-dir", str(data)).stdout.strip()
    globex = provsim("apikey", "create", "--tenant", "globex", "--data-dir", str(data)).stdout.strip()
    port = free_port()
    proc = start_provsim("serve", "--port", str(port), "--batch-interval", "0.2", "--time-scale", "0.001",
                         "--data-dir", str(data))
    found: dict[str, str] = {}
    try:
        wait_for_port(port, proc)
        found = _exercise(f"http://127.0.0.1:{port}", acme, globex)
        for side in ("provsim.db", "provsim.db-wal", "provsim.db-shm"):
            assert stat.S_IMODE((data / side).stat().st_mode) == 0o600, side
    finally:
        out, err = stop(proc)
    secrets = {"acme key": acme, "globex key": globex, **found,
               "signing key": pem_body(data / "keys" / "production.pem")}
    assert "Traceback" not in err and "internal server error" not in out + err
    assert leaks(out + err, secrets) == []


def _exercise(base: str, acme: str, globex: str) -> dict[str, str]:
    """Drive the API the ways that touch secrets; return the webhook secrets it handed out."""
    hook = f"http://127.0.0.1:{free_port()}/hook"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {acme}"}, timeout=30) as client:
        created = client.post("/api/v1/webhooks", json={"url": hook}).json()
        royal_hook = client.post("/api/v1/webhooks", json={"url": hook, "dialect": "royal"}).json()
        rotated = client.post(f"/api/v1/webhooks/{created['id']}/rotate").json()
        assert created["secret"] not in client.get("/api/v1/webhooks").text
        registered = client.post("/v0/provenance/register", json={"originator_id": "1", "content_hash": "ab" * 32})
        assert registered.status_code == 202, registered.text
        assert client.get(f"/api/v1/records/{registered.json()['id']}").status_code == 200
        assert client.get("/api/v1/deliveries").status_code == 200
        for token in (acme + "x", acme[:-1], "psk_" + created["secret"], created["secret"], "psk_"):
            response = client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401 and acme not in response.text
        other = client.get(f"/api/v1/webhooks/{created['id']}", headers={"Authorization": f"Bearer {globex}"})
        assert other.status_code == 403 and created["secret"] not in other.text
        bad = client.post("/api/v1/webhooks", content=b'{"url": "' + acme.encode() + b'"',
                          headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
    return {"webhook secret": created["secret"], "royal secret": royal_hook["secret"], "rotated": rotated["secret"]}
