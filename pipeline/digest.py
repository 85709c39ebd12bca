"""One-pass SHA-256 + BLAKE3 digests of byte streams and files, and the ingest error type."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import blake3

CHUNK_SIZE = 1024 * 1024


class IngestError(Exception):
    """A problem with one input item; str() is the one line "ITEM: CAUSE"."""

    def __init__(self, item: str, cause: str) -> None:
        item = " ".join(str(item).splitlines())
        cause = " ".join(str(cause).split())
        super().__init__(item, cause)
        self.item = item
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.item}: {self.cause}"


@dataclass(frozen=True)
class Digest:
    """Content digests of one byte stream: lowercase hex SHA-256 and BLAKE3, and its size (BLAKE3 alone when only it is known)."""

    sha256: str | None
    blake3: str
    size: int | None


class StreamHasher:
    """Feeds each chunk to SHA-256 and BLAKE3 together, so the bytes are read once."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._blake3 = blake3.blake3()
        self._size = 0

    @property
    def size(self) -> int:
        """Number of bytes hashed so far."""
        return self._size

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add the next chunk of the stream."""
        self._sha256.update(chunk)
        self._blake3.update(chunk)
        self._size += len(chunk)

    def digest(self) -> Digest:
        """Return the digests of everything fed so far."""
        return Digest(self._sha256.hexdigest(), self._blake3.hexdigest(), self._size)


def hash_file(path: str | os.PathLike[str], cap: int | None = None, chunk: int = CHUNK_SIZE) -> Digest:
    """Hash a file in one streamed pass through a reused buffer; raise IngestError past cap bytes."""
    name = str(path)
    hasher = StreamHasher()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    try:
        with open(Path(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if cap is not None and size > cap:
                raise IngestError(name, f"file is {size} bytes, over the cap of {cap} bytes")
            while count := handle.readinto(buffer):
                hasher.update(view[:count])
                if cap is not None and hasher.size > cap:
                    raise IngestError(name, f"file grew past the cap of {cap} bytes while being read")
    except OSError as exc:
        raise IngestError(name, exc.strerror or str(exc)) from exc
    return hasher.digest()
