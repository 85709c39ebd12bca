"""Turns command-line sources into items and streams URL items to disk, hashing as they arrive."""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal
from urllib.parse import unquote, urlsplit

import httpx

from pipeline.addresses import AddressRefused, guarded_transport
from pipeline.digest import Digest, IngestError, StreamHasher
from pipeline.fingerprint import SNIFF_BYTES, looks_like_html

__all__ = [
    "DEFAULT_IMAGE_CAP",
    "DEFAULT_OTHER_CAP",
    "DOWNLOAD_DEADLINE",
    "MAX_REDIRECTS",
    "TIMEOUT",
    "Caps",
    "IngestError",
    "SourceItem",
    "expand_sources",
    "fetch",
    "make_client",
    "sanitize_filename",
]

DEFAULT_IMAGE_CAP = 50 * 1024**2
DEFAULT_OTHER_CAP = 500 * 1024**2
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DOWNLOAD_DEADLINE = 120.0  # seconds one whole download may take, redirects included: a trickling server ends here
USER_AGENT = "provsim/0.1"
FALLBACK_NAME = "download"
MAX_NAME_BYTES = 200
MAX_SUFFIX_BYTES = 16


@dataclass(frozen=True)
class Caps:
    """Size limits in bytes: one for images, one for everything else (Tectra's 50 MB / 500 MB)."""

    image: int = DEFAULT_IMAGE_CAP
    other: int = DEFAULT_OTHER_CAP

    def limit_for(self, content_type: str | None, *names: str) -> int:
        """Return the image cap if the media type or any name's extension says image, else the other cap."""
        types = [content_type] + [mimetypes.guess_type(name)[0] for name in names]
        if any(t and t.split(";")[0].strip().lower().startswith("image/") for t in types):
            return self.image
        return self.other


@dataclass(frozen=True)
class SourceItem:
    """One input: a local file (location is its absolute path) or an http(s) URL."""

    location: str
    kind: Literal["file", "url"]
    display_name: str


def expand_sources(sources: Iterable[str]) -> Iterator[SourceItem | IngestError]:
    """Yield an item per file or http(s) URL and an IngestError per unusable source; directories are walked recursively in name order, skipping hidden names, each real directory once per call."""
    visited_dirs: set[str] = set()
    for source in sources:
        if not source.strip():
            yield IngestError(repr(source), "empty source")
        elif "://" in source:
            yield _url_item(source)
        else:
            yield from _expand_path(source, visited_dirs)


def _url_item(source: str) -> SourceItem | IngestError:
    """Accept an http(s) URL with a host, or explain why not."""
    try:
        parts = urlsplit(source)
    except ValueError as exc:
        return IngestError(source, f"invalid URL: {exc}")
    if parts.scheme.lower() not in ("http", "https"):
        return IngestError(source, f"unsupported URL scheme {parts.scheme!r} (only http and https)")
    if not parts.hostname:
        return IngestError(source, "URL has no host")
    return SourceItem(source, "url", source)


def _expand_path(source: str, visited_dirs: set[str]) -> Iterator[SourceItem | IngestError]:
    """Walk one local path depth-first in name order, following each real directory once."""
    pending = [source]
    while pending:
        shown = pending.pop()
        try:
            mode = os.stat(shown).st_mode
        except OSError as exc:
            broken = os.path.islink(shown) and isinstance(exc, FileNotFoundError)
            yield IngestError(shown, "broken symbolic link" if broken else exc.strerror or str(exc))
            continue
        if stat.S_ISREG(mode):
            yield SourceItem(os.path.abspath(shown), "file", shown)
        elif stat.S_ISDIR(mode):
            real = os.path.realpath(shown)
            if real in visited_dirs:
                continue
            visited_dirs.add(real)
            try:
                names = sorted(name for name in os.listdir(shown) if not name.startswith("."))
            except OSError as exc:
                yield IngestError(shown, exc.strerror or str(exc))
                continue
            pending.extend(os.path.join(shown, name) for name in reversed(names))
        else:
            yield IngestError(shown, "not a regular file or directory")


def make_client(transport: httpx.AsyncBaseTransport | None = None, *, allow_private: bool = False) -> httpx.AsyncClient:
    """Return an HTTP client following at most 5 redirects, with 10 s connect and 30 s read timeouts, that reaches only public addresses unless allow_private (a given transport replaces that guard)."""
    return httpx.AsyncClient(
        transport=transport or guarded_transport(allow_private),
        trust_env=False,  # an environment proxy would make the connections the address guard never sees
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def sanitize_filename(name: str) -> str:
    """Reduce a server-supplied name to a safe single file name (no directories, no leading dot)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name).strip(".")
    stem, suffix = os.path.splitext(name)
    if len(suffix.encode()) > MAX_SUFFIX_BYTES:
        stem, suffix = name, ""
    stem = stem.encode()[: MAX_NAME_BYTES - len(suffix.encode())].decode(errors="ignore")
    return stem + suffix if stem else FALLBACK_NAME + suffix


async def fetch(item: SourceItem, dest_dir: Path, client: httpx.AsyncClient, caps: Caps,
                deadline: float = DOWNLOAD_DEADLINE) -> tuple[Path, Digest]:
    """Stream a URL item into a new file in dest_dir, hashing on the way, within deadline seconds; raise IngestError on any failure."""
    url = item.location
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise IngestError(url, f"invalid URL: {exc}") from exc
    if parts.username is not None or parts.password is not None:
        raise IngestError(url, "refused: URLs with credentials are not fetched")
    try:
        async with asyncio.timeout(deadline):
            return await _download(url, dest_dir, client, caps)
    except TimeoutError as exc:
        raise IngestError(url, f"timed out: the download did not finish within {deadline:g} s") from exc


async def _download(url: str, dest_dir: Path, client: httpx.AsyncClient, caps: Caps) -> tuple[Path, Digest]:
    """Fetch one URL into a new file in dest_dir (no time limit of its own); raise IngestError on any failure."""
    try:
        async with client.stream("GET", url) as response:
            if not 200 <= response.status_code < 300:
                raise IngestError(url, f"HTTP {response.status_code}")
            name = _response_filename(response)
            content_type = response.headers.get("content-type")
            cap = caps.limit_for(content_type, name, urlsplit(url).path, response.url.path)
            declared = response.headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > cap:
                raise IngestError(url, f"Content-Length {declared} is over the cap of {cap} bytes")
            dest_dir.mkdir(parents=True, exist_ok=True)
            path, handle = _create_unique(dest_dir, name)
            try:
                with handle:
                    digest = await _stream_to(response, handle, url, cap, content_type)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return path, digest
    except AddressRefused as exc:
        raise IngestError(url, str(exc)) from exc
    except httpx.TooManyRedirects as exc:
        raise IngestError(url, f"more than {client.max_redirects} redirects") from exc
    except httpx.TimeoutException as exc:
        raise IngestError(url, f"timed out ({type(exc).__name__})") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise IngestError(url, f"{type(exc).__name__}: {str(exc) or 'request failed'}") from exc
    except OSError as exc:
        raise IngestError(url, f"cannot save download: {exc.strerror or exc}") from exc


async def _stream_to(response: httpx.Response, handle: BinaryIO, url: str, cap: int, content_type: str | None) -> Digest:
    """Copy the response body to handle, hashing it; refuse it past cap bytes, empty, or HTML claiming to be an image."""
    hasher = StreamHasher()
    head = b""
    async for chunk in response.aiter_bytes():
        hasher.update(chunk)
        if hasher.size > cap:
            raise IngestError(url, f"body passed the cap of {cap} bytes")
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        handle.write(chunk)
    if not hasher.size:
        raise IngestError(url, "empty body (0 bytes)")
    claimed = (content_type or "").split(";")[0].strip().lower()
    if claimed.startswith("image/") and looks_like_html(head):
        raise IngestError(url, f"served as {claimed} but the content is HTML")
    return hasher.digest()


def _response_filename(response: httpx.Response) -> str:
    """Pick the download's file name from Content-Disposition, else the final URL path; add an extension from Content-Type if it has none."""
    name = ""
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename() or ""
    name = sanitize_filename(name or PurePosixPath(unquote(response.url.path)).name)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    extension = mimetypes.guess_extension(content_type) if content_type else None
    if extension and not os.path.splitext(name)[1]:
        name += extension
    return name


def _create_unique(dest_dir: Path, name: str) -> tuple[Path, BinaryIO]:
    """Create a new file named name (or name-N.ext if taken) without overwriting anything."""
    stem, suffix = os.path.splitext(name)
    for number in itertools.count():
        candidate = dest_dir / (name if number == 0 else f"{stem}-{number}{suffix}")
        try:
            return candidate, open(candidate, "xb")
        except FileExistsError:
            continue
