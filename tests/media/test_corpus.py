"""The bad-input corpus: each case gets its one-line error from the real `provsim run`, and the good items beside it are registered."""

import asyncio
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.analyze import analyze_file
from pipeline.ingest import DEFAULT_IMAGE_CAP, DEFAULT_OTHER_CAP, Caps, IngestError, SourceItem, fetch, make_client

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
CASES = json.loads((CORPUS / "cases.json").read_text())["cases"]
RUN_TIMEOUT = 120  # seconds one provsim run may take
# Run python without the capabilities that let root read any file: then mode 000 stops root too.
WITHOUT_DAC = ("import ctypes, os, sys; prctl = ctypes.CDLL(None, use_errno=True).prctl; "
               "sys.exit('cannot drop capabilities') if any(prctl(24, cap, 0, 0, 0) for cap in (1, 2)) else None; "
               "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def cases(run: str) -> list[dict]:
    """The corpus cases of one run."""
    return [case for case in CASES if case["run"] == run]


def jpeg(seed: int) -> bytes:
    """A small JPEG of random 8x8 blocks (distinct per seed)."""
    blocks = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(blocks).resize((96, 64), Image.NEAREST).save(out, format="JPEG", quality=90)
    return out.getvalue()


def provsim(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run the real `provsim` command line in a subprocess (under prefix, a python launcher, if given)."""
    command = [*(prefix or (sys.executable,)), "-m", "pipeline.cli", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, cwd=ROOT)


def run_report(sources: list[str], data_dir: Path, *options: str, prefix: tuple[str, ...] = ()) -> dict:
    """`provsim run --json` over sources; returns its report after checking it refused inputs (exit 2)."""
    proc = provsim("run", *sources, *options, "--no-nft", "--data-dir", str(data_dir), "--json", prefix=prefix)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


class Handler(BaseHTTPRequestHandler):
    """The corpus's URL cases: a good photo, HTML as a JPEG, a redirect loop, 404, 500, a huge length, a trickle."""

    def do_GET(self) -> None:
        """Answer one route; record every path asked for."""
        self.server.paths.append(self.path)
        route = {"/good.jpg": lambda: self.body(self.server.photo, "image/jpeg"),
                 "/html-as-jpeg/photo.jpg": lambda: self.body((CORPUS / "error_page.html").read_bytes(), "image/jpeg"),
                 "/loop": lambda: self.head(302, Location="/loop", **{"Content-Length": "0"}),
                 "/broken.jpg": lambda: self.head(500, **{"Content-Length": "0"}),
                 "/huge.jpg": lambda: self.head(200, **{"Content-Type": "image/jpeg", "Content-Length": str(2**30)}),
                 "/empty.jpg": lambda: self.body(b"", "image/jpeg"),
                 "/trickle.jpg": self.trickle}.get(self.path)
        (route or (lambda: self.head(404, **{"Content-Length": "0"})))()

    def head(self, status: int, **headers: str) -> None:
        """Send a status line and headers."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def body(self, data: bytes, content_type: str) -> None:
        """Send a 200 with data."""
        self.head(200, **{"Content-Type": content_type, "Content-Length": str(len(data))})
        self.wfile.write(data)

    def trickle(self) -> None:
        """Promise 100 bytes and send one a second until the client leaves or the server stops."""
        self.head(200, **{"Content-Type": "image/jpeg", "Content-Length": "100"})
        for _ in range(100):
            if self.server.stopping.wait(1.0):
                return
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:
                return

    def log_message(self, *args) -> None:
        """Stay quiet."""


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """The corpus's HTTP server on 127.0.0.1, with .base, .photo and the .paths it was asked for."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.base, httpd.photo, httpd.paths, httpd.stopping = (f"http://127.0.0.1:{httpd.server_address[1]}",
                                                           jpeg(100), [], threading.Event())
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


def make(case: dict, directory: Path) -> Path:
    """Build a case that is not committed: a sparse file over the cap, a directory with a symlink loop."""
    path = directory / case["path"]
    if case["make"] == "sparse":
        with open(path, "wb") as handle:
            handle.truncate(case["size"])  # sparse: no data block is written
    elif case["make"] == "symlink_loop":
        path.mkdir()
        (path / "inner.jpg").write_bytes(jpeg(200))
        (path / "back").symlink_to(path)
        (path / "self").symlink_to(path / "self")
    return path


def sources_of(run: str, tmp_path: Path, base: str) -> dict[str, str]:
    """Each case's source as given to provsim (committed files are copied so items have this run's paths)."""
    sources = {}
    for case in cases(run):
        if case["kind"] == "file":
            sources[case["name"]] = str(shutil.copy(CORPUS / case["path"], tmp_path / case["path"]))
        elif case["kind"] == "made" and case["make"] != "unreadable":
            sources[case["name"]] = str(make(case, tmp_path))
        elif case["kind"] == "url":
            sources[case["name"]] = base + case["route"]
    return sources


def expected_errors(run: str, sources: dict[str, str]) -> list[str]:
    """The one-line errors the cases of a run must get, sorted."""
    return sorted(case["error"].format(item=sources[case["name"]]) for case in cases(run)
                  if case["error"] is not None and case["name"] in sources)


def registered_hashes(report: dict) -> set[str]:
    """SHA-256 of every item a run registered."""
    return {item["sha256"] for item in report["registered"]}


def test_file_cases_each_get_their_line_and_the_good_files_are_registered(tmp_path: Path, server):
    sources = sources_of("files", tmp_path, server.base)
    good = [tmp_path / "good_1.jpg", tmp_path / "good_2.jpg"]
    for seed, path in enumerate(good):
        path.write_bytes(jpeg(seed))
    report = run_report([*sources.values(), *map(str, good)], tmp_path / "state")
    assert all("\n" not in line for line in report["errors"])
    assert sorted(report["errors"]) == expected_errors("files", sources)
    inner = (tmp_path / "loop_dir" / "inner.jpg").read_bytes()
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in good} | {hashlib.sha256(inner).hexdigest()} \
        <= registered_hashes(report)
    bomb = hashlib.sha256((CORPUS / "bomb.png").read_bytes()).hexdigest()
    assert bomb in registered_hashes(report)
    assert server.paths == []  # the loopback URL was refused before any connection


def test_url_cases_each_get_their_line_and_the_good_url_is_registered(tmp_path: Path, server):
    sources = sources_of("urls", tmp_path, server.base)
    report = run_report([*sources.values(), server.base + "/good.jpg"], tmp_path / "state", "--allow-private")
    assert all("\n" not in line for line in report["errors"])
    assert sorted(report["errors"]) == expected_errors("urls", sources)
    assert registered_hashes(report) == {hashlib.sha256(server.photo).hexdigest()}
    assert list((tmp_path / "state" / "downloads").iterdir()) == [tmp_path / "state" / "downloads" / "good.jpg"]
    assert server.paths.count("/loop") == 6


def test_a_trickling_server_ends_at_the_download_deadline(tmp_path: Path, server):
    [case] = cases("fetch")
    url = server.base + case["route"]

    async def main():
        async with make_client(allow_private=True) as client:
            await fetch(SourceItem(url, "url", url), tmp_path, client, Caps(), deadline=case["deadline"])

    started = time.monotonic()
    with pytest.raises(IngestError) as info:
        asyncio.run(main())
    assert str(info.value) == case["error"].format(item=url)
    assert time.monotonic() - started < case["deadline"] + 3
    assert list(tmp_path.iterdir()) == []


def unreadable_prefix(path: Path) -> tuple[str, ...] | None:
    """A python launcher under which a mode-000 file cannot be read (root needs its capabilities dropped), or None."""
    prefix = (sys.executable, "-c", WITHOUT_DAC) if os.geteuid() == 0 else (sys.executable,)
    probe = subprocess.run([*prefix, "-c", f"open({str(path)!r}, 'rb').read(1)"], capture_output=True, timeout=30)
    return prefix if probe.returncode != 0 and b"PermissionError" in probe.stderr else None


def test_a_file_without_read_permission_gets_its_line(tmp_path: Path):
    [case] = [c for c in CASES if c["kind"] == "made" and c["make"] == "unreadable"]
    locked, good = tmp_path / case["path"], tmp_path / "good.jpg"
    locked.write_bytes(jpeg(300))
    good.write_bytes(jpeg(301))
    locked.chmod(0)
    prefix = unreadable_prefix(locked)
    if prefix is None:
        pytest.skip("mode 000 does not stop this user from reading (root that cannot drop CAP_DAC_OVERRIDE)")
    report = run_report([str(locked), str(good)], tmp_path / "state", prefix=prefix)
    assert report["errors"] == [case["error"].format(item=locked)]
    assert registered_hashes(report) == {hashlib.sha256(good.read_bytes()).hexdigest()}


def test_the_bomb_is_never_decoded_and_keeps_its_reason():
    [case] = [c for c in CASES if c.get("path") == "bomb.png"]
    started = time.monotonic()
    analysis = analyze_file(str(CORPUS / "bomb.png"), DEFAULT_IMAGE_CAP, DEFAULT_OTHER_CAP)
    assert time.monotonic() - started < 2
    assert (analysis.fingerprint.perceptual_hash, analysis.fingerprint.reason) == (None, case["reason"])
    assert (CORPUS / "bomb.png").stat().st_size < 100
