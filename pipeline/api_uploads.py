"""Streamed multipart uploads: the file part goes straight to disk under a size cap, never whole into memory."""
from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from .api_errors import ApiError, declared_length
from .ingest import Caps, sanitize_filename

FIELD_LIMIT = 64 * 1024  # bytes of a non-file field (context, origin_type)
MAX_PARTS = 8
FRAMING = 64 * 1024  # multipart boundaries and part headers allowed beside the file's own bytes
FILE_FIELD = "file"


@dataclass
class Upload:
    """A received upload: where its file now is, the client's file name and type, and its text fields."""

    path: Path
    filename: str
    content_type: str | None
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete the stored file."""
        self.path.unlink(missing_ok=True)


class _Parts:
    """python-multipart callbacks: the file part is written to disk as it arrives, other parts kept small."""

    def __init__(self, dest_dir: Path, caps: Caps, allowed: Collection[str]):
        self.dest_dir = dest_dir
        self.caps = caps
        self.allowed = allowed
        self.fields: dict[str, str] = {}
        self.path: Path | None = None
        self.filename = ""
        self.content_type: str | None = None
        self.size = 0
        self.cap = 0
        self.parts = 0
        self.ended = False
        self._handle: BinaryIO | None = None
        self._name = ""
        self._buffer = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""

    def callbacks(self) -> dict:
        """The callback table MultipartParser takes."""
        return {
            "on_part_begin": self.part_begin, "on_part_data": self.part_data, "on_part_end": self.part_end,
            "on_header_field": self.header_field, "on_header_value": self.header_value,
            "on_header_end": self.header_end, "on_headers_finished": self.headers_finished,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        """A new part: at most MAX_PARTS of them."""
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ApiError(422, f"too many form fields (at most {MAX_PARTS})")
        self._headers, self._buffer, self._name = {}, bytearray(), ""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        """More of a part header's name."""
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        """More of a part header's value."""
        self._header_value += data[start:end]

    def header_end(self) -> None:
        """A part header is complete."""
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        """The part's headers are in: check its name, open the file for the file part."""
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        if b"name" not in options:
            raise ApiError(400, "a multipart part has no Content-Disposition name")
        name = options[b"name"].decode("utf-8", "replace")
        if name not in self.allowed:
            raise ApiError(422, f"{name}: unknown field", name)
        if (name == FILE_FIELD and self.path is not None) or name in self.fields:
            raise ApiError(422, f"{name}: given more than once", name)
        self._name = name
        if name == FILE_FIELD:
            self._open(options.get(b"filename", b"").decode("utf-8", "replace"))

    def _open(self, client_name: str) -> None:
        """Start writing the file part to a new file; its cap follows the type and name it claims."""
        self.filename = PurePosixPath(client_name.replace("\\", "/")).name[:255] or "upload"
        self.content_type = self._headers.get(b"content-type", b"").decode("latin-1") or None
        self.cap = self.caps.limit_for(self.content_type, self.filename)
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dest_dir / f"{secrets.token_hex(8)}-{sanitize_filename(self.filename)}"
        self._handle = open(self.path, "xb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        """Part bytes: the file's go to disk under its cap, a field's to a small buffer."""
        if self._name == FILE_FIELD:
            self.size += end - start
            if self.size > self.cap:
                raise ApiError(413, f"file is over the cap of {self.cap} bytes", FILE_FIELD)
            self._handle.write(data[start:end])
            return
        if len(self._buffer) + end - start > FIELD_LIMIT:
            raise ApiError(413, f"{self._name}: over the limit of {FIELD_LIMIT} bytes", self._name)
        self._buffer += data[start:end]

    def part_end(self) -> None:
        """A part is complete: close the file, or keep the field's text."""
        if self._name == FILE_FIELD:
            self._handle.close()
            self._handle = None
            return
        try:
            self.fields[self._name] = self._buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, f"{self._name}: not UTF-8 text", self._name) from None

    def end(self) -> None:
        """The closing boundary arrived."""
        self.ended = True

    def abandon(self) -> None:
        """Close and delete a file part written so far."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


FIELD_DOCS = {
    FILE_FIELD: {"type": "string", "format": "binary", "description": "The media file."},
    "context": {"type": "string", "description": "A JSON object, echoed in Royal webhooks."},
    "origin_type": {"type": "string", "description": "Overrides the derived origin type."},
}


def multipart_doc(fields: Collection[str]) -> dict:
    """The OpenAPI content entry of a multipart body with these fields ("file" required)."""
    return {"multipart/form-data": {"schema": {
        "type": "object", "required": [FILE_FIELD], "properties": {name: FIELD_DOCS[name] for name in fields},
    }}}


async def receive_upload(request: Request, dest_dir: Path, caps: Caps, allowed: Collection[str]) -> Upload:
    """Stream a multipart/form-data body: its "file" part to a new file in dest_dir, under the caps.

    413 when Content-Length already says the body is over the larger cap, or as soon as the file
    part passes the cap its declared type or name calls for; nothing is kept from a refused body.
    """
    largest = max(caps.image, caps.other)
    declared = declared_length(request)
    if declared is not None and declared > largest + FRAMING:
        raise ApiError(413, f"request body of {declared} bytes is over the cap of {largest} bytes", FILE_FIELD)
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data without a boundary parameter")
    parts = _Parts(dest_dir, caps, allowed)
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        if not parts.ended:
            raise ApiError(400, "multipart body ended before its closing boundary")
        if parts.path is None:
            raise ApiError(422, f"{FILE_FIELD}: field required", FILE_FIELD)
        if parts.size == 0:
            raise ApiError(422, f"{FILE_FIELD}: the file is empty", FILE_FIELD)
    except FormParserError as exc:
        parts.abandon()
        raise ApiError(400, f"malformed multipart body: {exc}") from None
    except ClientDisconnect:
        parts.abandon()
        raise ApiError(400, "the client went away before the upload ended") from None
    except BaseException:
        parts.abandon()
        raise
    return Upload(parts.path, parts.filename, parts.content_type, parts.size, parts.fields)
