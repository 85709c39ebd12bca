"""Tests of pipeline.ingest: source expansion on a real tree and fetching from a real loopback server."""

import asyncio
import contextlib
import hashlib
import itertools
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import blake3
import httpx
import pytest
from aiohttp import web

from pipeline.ingest import (
    DEFAULT_IMAGE_CAP,
    DEFAULT_OTHER_CAP,
    Caps,
    IngestError,
    SourceItem,
    expand_sources,
    fetch,
    make_client,
    sanitize_filename,
)

PHOTO = bytes(range(256)) * 20
CAPS = Caps(image=1000, other=100_000)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_defaults_are_tectras_caps():
    assert (Caps().image, Caps().other) == (DEFAULT_IMAGE_CAP, DEFAULT_OTHER_CAP) == (50 * 2**20, 500 * 2**20)
    assert CAPS.limit_for("image/png; charset=binary") == 1000
    assert CAPS.limit_for("application/octet-stream", "/x/photo.JPG") == 1000
    assert CAPS.limit_for("text/plain", "notes.txt") == 100_000
    assert CAPS.limit_for(None) == 100_000


def test_expand_directory_recursively_sorted_skipping_hidden(tmp_path: Path):
    root = tmp_path / "media"
    for name in ("b.jpg", "a.png", "sub/z.txt", "sub/deeper/c.jpg", ".hidden.jpg", ".git/config", "c/d.jpg"):
        touch(root / name)
    items = list(expand_sources([str(root)]))
    assert [item.display_name for item in items] == [
        str(root / "a.png"),
        str(root / "b.jpg"),
        str(root / "c" / "d.jpg"),
        str(root / "sub" / "deeper" / "c.jpg"),
        str(root / "sub" / "z.txt"),
    ]
    assert all(isinstance(item, SourceItem) and item.kind == "file" for item in items)
    assert all(os.path.isabs(item.location) and os.path.isfile(item.location) for item in items)


def test_relative_paths_keep_their_display_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    touch(tmp_path / "dir" / "one.jpg")
    monkeypatch.chdir(tmp_path)
    [item] = list(expand_sources(["dir"]))
    assert item == SourceItem(str(tmp_path / "dir" / "one.jpg"), "file", os.path.join("dir", "one.jpg"))


def test_missing_path_is_reported_and_the_run_goes_on(tmp_path: Path):
    real = touch(tmp_path / "real.jpg")
    results = list(expand_sources([str(tmp_path / "missing.jpg"), str(real), "https://example.org/a.jpg"]))
    assert isinstance(results[0], IngestError)
    assert str(results[0]) == f"{tmp_path / 'missing.jpg'}: No such file or directory"
    assert results[1] == SourceItem(str(real), "file", str(real))
    assert results[2] == SourceItem("https://example.org/a.jpg", "url", "https://example.org/a.jpg")


def test_symlink_loops_terminate(tmp_path: Path):
    root = tmp_path / "tree"
    touch(root / "a" / "photo.jpg")
    (root / "a" / "back_to_root").symlink_to(root)
    (root / "a" / "self").symlink_to(root / "a" / "self")
    (root / "dangling").symlink_to(root / "gone")
    results = list(itertools.islice(expand_sources([str(root), str(root / "a")]), 50))
    files = [r for r in results if isinstance(r, SourceItem)]
    errors = sorted(str(r) for r in results if isinstance(r, IngestError))
    assert [f.location for f in files] == [str(root / "a" / "photo.jpg")]
    assert errors == [
        f"{root / 'a' / 'self'}: Too many levels of symbolic links",
        f"{root / 'dangling'}: broken symbolic link",
    ]


def test_special_files_and_bad_urls_are_errors(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    results = list(expand_sources([str(fifo), "ftp://example.org/x.jpg", "http:///nohost", ""]))
    assert [str(r) for r in results] == [
        f"{fifo}: not a regular file or directory",
        "ftp://example.org/x.jpg: unsupported URL scheme 'ftp' (only http and https)",
        "http:///nohost: URL has no host",
        "'': empty source",
    ]


def test_sanitize_filename():
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("..\\..\\evil name.png") == "evil_name.png"
    assert sanitize_filename(".bashrc") == "bashrc"
    assert sanitize_filename("..") == "download"
    assert sanitize_filename("café photo.jpg") == "café_photo.jpg"
    long_name = sanitize_filename("x" * 500 + ".jpeg")
    assert long_name.endswith(".jpeg") and len(long_name.encode()) <= 200


def test_make_client_configuration():
    async def main() -> httpx.AsyncClient:
        async with make_client() as client:
            return client

    client = asyncio.run(main())
    assert client.follow_redirects is True
    assert client.max_redirects == 5
    assert (client.timeout.connect, client.timeout.read) == (10.0, 30.0)


class Server:
    """A loopback aiohttp server with the routes the fetch tests need."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.streamed = 0
        app = web.Application()
        app.router.add_get("/files/photo.jpg", self.photo)
        app.router.add_get("/missing", self.missing)
        app.router.add_get("/r/{n}", self.redirect)
        app.router.add_get("/declared-huge", self.declared_huge)
        app.router.add_get("/endless", self.endless)
        app.router.add_get("/blob/{name}", self.blob)
        app.router.add_get("/attachment", self.attachment)
        app.router.add_get("/stall", self.stall)
        self.app = app

    async def photo(self, request: web.Request) -> web.Response:
        return web.Response(body=PHOTO, content_type="image/jpeg")

    async def missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="not here")

    async def redirect(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=b"arrived", content_type="text/plain")
        raise web.HTTPFound(f"/r/{n - 1}")

    async def declared_huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = 10_000_000
        await response.prepare(request)
        await self.release.wait()
        return response

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(64):
                await response.write(b"\x00" * 65536)
                self.streamed += 65536
        return response

    async def blob(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "application/octet-stream")
        return web.Response(body=b"\x01" * int(request.query["size"]), headers={"Content-Type": kind})

    async def attachment(self, request: web.Request) -> web.Response:
        headers = {"Content-Disposition": 'attachment; filename="../../evil name.png"', "Content-Type": "image/png"}
        return web.Response(body=b"png-ish", headers=headers)

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 10
        await response.prepare(request)
        await self.release.wait()
        return response


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[Server, str]]:
    server = Server()
    runner = web.AppRunner(server.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield server, f"http://{host}:{port}"
    finally:
        server.release.set()
        await runner.cleanup()


def loopback_client() -> httpx.AsyncClient:
    """The download client, allowed to reach the loopback test server."""
    return make_client(allow_private=True)


def run_fetch(dest: Path, path: str, caps: Caps = CAPS, client_factory=loopback_client) -> tuple[Path, object]:
    """Fetch one path from a fresh loopback server, bounded to 10 s."""

    async def main():
        async with serving() as (_, base), client_factory() as client:
            item = SourceItem(base + path, "url", base + path)
            return await asyncio.wait_for(fetch(item, dest, client, caps), 10)

    return asyncio.run(main())


def test_fetch_200_streams_to_file_and_hashes(tmp_path: Path):
    path, digest = run_fetch(tmp_path, "/files/photo.jpg", Caps(image=len(PHOTO), other=10))
    assert path == tmp_path / "photo.jpg"
    assert path.read_bytes() == PHOTO
    assert digest.sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert digest.blake3 == blake3.blake3(PHOTO).hexdigest()
    assert digest.size == len(PHOTO)
    again, _ = run_fetch(tmp_path, "/files/photo.jpg", Caps(image=len(PHOTO), other=10))
    assert again == tmp_path / "photo-1.jpg"
    assert path.read_bytes() == PHOTO


def test_fetch_404_is_an_ingest_error(tmp_path: Path):
    with pytest.raises(IngestError) as info:
        run_fetch(tmp_path, "/missing")
    assert str(info.value).endswith("/missing: HTTP 404")
    assert list(tmp_path.iterdir()) == []


def test_fetch_follows_five_redirects_but_not_six(tmp_path: Path):
    path, digest = run_fetch(tmp_path, "/r/5")
    assert path.read_bytes() == b"arrived"
    assert path.name == "0.txt"
    with pytest.raises(IngestError) as info:
        run_fetch(tmp_path / "six", "/r/6")
    assert str(info.value).endswith("/r/6: more than 5 redirects")


def test_content_length_over_cap_is_refused_before_the_body(tmp_path: Path):
    started = time.monotonic()
    with pytest.raises(IngestError) as info:
        run_fetch(tmp_path, "/declared-huge")
    assert time.monotonic() - started < 5
    assert "Content-Length 10000000 is over the cap of 100000 bytes" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_streamed_body_over_cap_is_refused_and_removed(tmp_path: Path):
    async def main():
        async with serving() as (server, base), loopback_client() as client:
            item = SourceItem(base + "/endless", "url", base + "/endless")
            with pytest.raises(IngestError) as info:
                await asyncio.wait_for(fetch(item, tmp_path, client, Caps(image=10, other=200_000)), 10)
            return server, info.value

    server, error = asyncio.run(main())
    assert "body passed the cap of 200000 bytes" in str(error)
    assert server.streamed < 64 * 65536
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/blob/data?size=5000&type=image/png", True),
        ("/blob/data?size=5000&type=text/plain", False),
        ("/blob/pic.jpg?size=5000", True),
        ("/blob/pic.jpg?size=900", False),
    ],
)
def test_image_cap_applies_by_content_type_or_extension(tmp_path: Path, path: str, refused: bool):
    if refused:
        with pytest.raises(IngestError, match="over the cap of 1000 bytes"):
            run_fetch(tmp_path, path)
    else:
        saved, digest = run_fetch(tmp_path, path)
        assert saved.stat().st_size == digest.size


def test_content_disposition_name_is_sanitized(tmp_path: Path):
    path, _ = run_fetch(tmp_path, "/attachment")
    assert path == tmp_path / "evil_name.png"


def test_read_timeout_is_an_ingest_error(tmp_path: Path):
    def quick_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(0.3))

    with pytest.raises(IngestError, match=r"/stall: timed out \(ReadTimeout\)"):
        run_fetch(tmp_path, "/stall", client_factory=quick_client)
    assert list(tmp_path.iterdir()) == []


def test_connection_refused_is_an_ingest_error(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.jpg"

    async def main():
        async with loopback_client() as client:
            return await fetch(SourceItem(url, "url", url), tmp_path, client, CAPS)

    with pytest.raises(IngestError, match=r"ConnectError"):
        asyncio.run(main())
