"""The command line as a user drives it: endpoints, failed deliveries and retry, bad input, URLs, listen."""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from e2e_support import ROOT, make_images, provsim
from seed_receiver import SeedReceiver
from shapes import shape_errors

SECRET = "whsec_" + "Y2xpLXRlc3Qtc2VjcmV0LW9mLXRoaXJ0eS10d28tYnl0ZXM="


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_endpoint_add_list_remove_and_persisted_endpoints_receive_events(tmp_path: Path):
    data = tmp_path / "state"
    media = tmp_path / "media"
    make_images(media, 3)
    with SeedReceiver(SECRET) as rx:
        added = json.loads(provsim("endpoint", "add", rx.url, "--secret", SECRET, "--events",
                                   "batch.anchored", "--data-dir", str(data), "--json").stdout)
        generated = json.loads(provsim("endpoint", "add", "http://127.0.0.1:9/never", "--data-dir", str(data),
                                       "--json").stdout)
        listed = json.loads(provsim("endpoint", "list", "--data-dir", str(data), "--json").stdout)
        provsim("endpoint", "remove", generated["id"], "--data-dir", str(data))
        provsim("run", str(media), "--data-dir", str(data))
        types = [d.event["event"] for d in rx.events()]
    assert added["secret"] == SECRET and added["events"] == ["batch.anchored"]
    assert generated["secret"].startswith("whsec_") and len(generated["secret"]) > 40
    assert {e["id"] for e in listed} == {added["id"], generated["id"]}
    assert all("secret" not in e for e in listed), "secrets are shown once, at creation"
    assert types == ["batch.anchored"], "the persisted endpoint's event filter applies"
    bad = provsim("endpoint", "add", "ftp://example.invalid/x", "--data-dir", str(data), check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    unknown = provsim("endpoint", "add", rx.url, "--events", "content.exploded", "--data-dir", str(data), check=False)
    assert unknown.returncode == 2 and "content.exploded" in unknown.stderr


def test_receiver_down_deliveries_fail_then_manual_retry_delivers_with_the_same_id(tmp_path: Path):
    data = tmp_path / "state"
    media = tmp_path / "media"
    make_images(media, 2)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    proc = provsim("run", str(media), "--endpoint", url, "--secret", SECRET, "--time-scale", "0.001",
                   "--data-dir", str(data), "--json", check=False)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["deliveries"]["failed"] == 3
    failed = json.loads(provsim("deliveries", "--status", "failed", "--data-dir", str(data), "--json").stdout)
    assert len(failed) == 3
    for row in failed:
        attempts = row["attempts"]
        assert [a["n"] for a in attempts] == [1, 2, 3]
        assert all(a["status_code"] is None and "refused" in a["error"] for a in attempts)
        gaps = [attempts[i + 1]["at"] - attempts[i]["at"] for i in range(2)]
        assert gaps[0] >= 0.06 and gaps[1] >= 0.3, "the seed's 1 min / 5 min schedule, scaled by 0.001"
    target = failed[0]["id"]
    with SeedReceiver(SECRET, port=port) as rx:
        out = provsim("retry", target, "--data-dir", str(data))
        assert f"{target}: delivered" in out.stdout
        [seen] = rx.deliveries
    assert seen.verified and seen.headers["X-Tectra-Delivery"] == target
    row = json.loads(provsim("deliveries", "--data-dir", str(data), "--json").stdout)
    assert [a["n"] for a in next(r for r in row if r["id"] == target)["attempts"]] == [1, 2, 3, 4]
    missing = provsim("retry", "dlv_nope", "--data-dir", str(data), check=False)
    assert missing.returncode == 2 and "dlv_nope: not found" in missing.stderr


def test_bad_items_are_reported_in_one_line_each_and_the_rest_of_the_run_goes_on(tmp_path: Path):
    data = tmp_path / "state"
    media = tmp_path / "media"
    make_images(media, 3)
    good = (media / "img_0000.jpg").read_bytes()
    (media / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (media / "empty.png").write_bytes(b"")
    with SeedReceiver(SECRET) as rx:
        proc = provsim("run", str(media), str(tmp_path / "missing.jpg"), "--endpoint", rx.url, "--secret", SECRET,
                       "--data-dir", str(data), "--json", check=False)
        signed = rx.events("content.signed")
    report = json.loads(proc.stdout)
    assert proc.returncode == 2
    assert len(report["registered"]) == 3 and len(signed) == 3
    errors = sorted(report["errors"])
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert any("truncated.jpg" in e for e in errors)
    assert any("empty.png" in e for e in errors)
    assert any("missing.jpg" in e for e in errors)


def test_url_sources_are_downloaded_hashed_and_registered(tmp_path: Path):
    served = tmp_path / "served"
    [image] = make_images(served, 1, seed=3)
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{image.name}"
        with SeedReceiver(SECRET) as rx:
            proc = provsim("run", url, "--allow-private", "--endpoint", rx.url, "--secret", SECRET,
                           "--data-dir", str(tmp_path / "state"), "--json")
            [signed] = rx.events("content.signed")
    finally:
        server.shutdown()
        server.server_close()
    report = json.loads(proc.stdout)
    assert report["registered"][0]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert signed.event["data"]["original_filename"] == image.name
    assert shape_errors(signed.event) == []


def test_listen_verifies_prints_and_dumps_what_it_receives(tmp_path: Path):
    port = free_port()
    dump = tmp_path / "received.jsonl"
    media = tmp_path / "media"
    make_images(media, 2)
    listener = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "listen", "--port", str(port), "--secret", SECRET, "--dump", str(dump)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        provsim("run", str(media), "--endpoint", f"http://127.0.0.1:{port}/", "--secret", SECRET,
                "--data-dir", str(tmp_path / "state"))
        forged = provsim("run", str(media), "--endpoint", f"http://127.0.0.1:{port}/", "--secret",
                         "whsec_wrong", "--data-dir", str(tmp_path / "other"), "--time-scale", "0.0001",
                         check=False)
    finally:
        listener.terminate()
        output, _ = listener.communicate(timeout=10)
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    good = [x for x in lines if x["verified"]]
    assert len(good) == 3  # two content.signed, one batch.anchored
    assert forged.returncode == 1, "a receiver answering 401 makes the deliveries fail"
    assert len([x for x in lines if not x["verified"]]) == 9  # three events, three attempts each
    assert output.count("content.signed") >= 2 and "401" in output


def test_signer_show_prints_the_key(tmp_path: Path):
    info = json.loads(provsim("signer", "show", "--data-dir", str(tmp_path), "--json").stdout)
    assert info["algorithm"] == "Ed25519"
    assert len(info["public_key_hex"]) == 64 and info["key_id"].startswith("ed25519:")
    again = json.loads(provsim("signer", "show", "--data-dir", str(tmp_path), "--json").stdout)
    assert again == info, "the key is made once and kept"


def test_demo_passes(tmp_path: Path):
    proc = provsim("demo", "--data-dir", str(tmp_path / "demo"))
    assert "demo passed" in proc.stdout
    assert "harbor_resized.jpg" in proc.stdout
