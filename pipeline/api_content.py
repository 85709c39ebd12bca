"""Registration (Tectra's upload or URL, Royal's register), verification and records over HTTP."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import api_auth
from .analyze import Analysis, analyze_file
from emitter.safejson import MAX_DEPTH, too_deep

from emitter.safejson import strict_loads

from .api_errors import (JSON_LIMIT, ApiError, check_http_url, check_text, is_json, json_body_doc, media_type,
                         parse_json, read_json, read_limited)
from .api_runtime import Runtime, runtime
from .api_uploads import FILE_FIELD, Upload, multipart_doc, receive_upload
from .digest import IngestError
from .fingerprint import fingerprint
from .ingest import SourceItem, fetch
from .records import Party
from .verify import verify_analysis

ORIGIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
UPLOAD_FIELDS = (FILE_FIELD, "context", "origin_type")

router = APIRouter()


class ContentFromUrl(BaseModel):
    """Content to fetch from a URL and register."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="http:// or https:// URL of the media.")
    context: dict | None = Field(default=None, description="Any JSON object, echoed in Royal webhooks.")
    origin_type: str | None = Field(default=None, pattern=ORIGIN_PATTERN, description="Overrides the derived origin.")


class RoyalRegister(BaseModel):
    """Royal's registration request: `file_url`, `content_hash` (BLAKE3) or both (then they must agree)."""

    model_config = ConfigDict(extra="forbid")

    originator_id: int | str = Field(description="Royal id of the originator: a decimal string or integer.")
    file_url: str | None = Field(default=None, max_length=2048, description="The file to fetch, hash and register.")
    content_hash: str | None = Field(default=None, max_length=66,
                                     description="BLAKE3 of the content (64 hex digits, optional 0x): enough alone.")
    name: str | None = Field(default=None, max_length=255, description="The file name to record.")
    description: str | None = Field(default=None, max_length=4096, description="Accepted; not stored.")
    context: dict | None = Field(default=None, description="Any JSON object, echoed in every webhook.")

    @field_validator("originator_id", mode="before")
    @classmethod
    def _royal_id(cls, value: object) -> str:
        """A Royal id: a non-negative integer, kept as its decimal string."""
        if isinstance(value, bool) or not (isinstance(value, int) and value >= 0
                                           or isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValueError("must be a Royal id: a non-negative integer or a string of decimal digits")
        return str(int(value))


class Accepted(BaseModel):
    """A registration taken: its record id, and "pending" (or "already_registered" with status 200)."""

    record_id: str
    status: str


def _ingest_error(exc: IngestError, field: str) -> ApiError:
    """An input refused while analysed: 413 when over a size cap, else 422; never the server's path."""
    return ApiError(413 if "over the cap" in exc.cause else 422, f"{field}: {exc.cause}", field)


def _context(text: str | None) -> dict | None:
    """The "context" form field: a JSON object."""
    if text is None:
        return None
    if too_deep(text.encode("utf-8")):
        raise ApiError(422, f"context: nests deeper than {MAX_DEPTH} levels", "context")
    try:
        value = strict_loads(text)
    except ValueError:
        raise ApiError(422, "context: not valid JSON", "context") from None
    if not isinstance(value, dict):
        raise ApiError(422, "context: must be a JSON object", "context")
    check_text(value, "context")
    return value


def _origin_type(text: str | None) -> str | None:
    """The "origin_type" form field, held to the same pattern as the JSON one."""
    if text is not None and not re.fullmatch(ORIGIN_PATTERN, text):
        raise ApiError(422, "origin_type: use 1 to 64 letters, digits, '.', '_' or '-'", "origin_type")
    return text


async def _analyze_upload(rt: Runtime, upload: Upload, mark_key: bytes | None = None) -> Analysis:
    """Hash and fingerprint an uploaded file in a worker process (and read its watermark under mark_key, to verify
    it)."""
    caps = rt.settings.caps
    try:
        return await asyncio.get_running_loop().run_in_executor(
            rt.service.pool, analyze_file, str(upload.path), caps.image, caps.other, mark_key)
    except IngestError as exc:
        raise _ingest_error(exc, FILE_FIELD) from None


async def _download(rt: Runtime, url: str, field: str) -> tuple[Path, Analysis]:
    """Fetch a URL (hashed as it streams, under the caps), then fingerprint it in a worker process."""
    check_http_url(url, field)
    try:
        path, digest = await fetch(SourceItem(url, "url", url), rt.downloads, rt.client, rt.settings.caps)
    except IngestError as exc:
        raise ApiError(422, str(exc), field) from None
    except Exception as exc:  # a URL the HTTP stack cannot handle is still the client's input
        raise ApiError(422, f"{url}: {type(exc).__name__}: {exc}", field) from None
    try:
        looks = await asyncio.get_running_loop().run_in_executor(rt.service.pool, fingerprint, str(path))
    except IngestError as exc:
        path.unlink(missing_ok=True)
        raise ApiError(422, f"{url}: {exc.cause}", field) from None
    return path, Analysis(digest=digest, fingerprint=looks)


def _url_name(url: str) -> str:
    """The last segment of a URL's path, as the CLI names a downloaded item ("" if it has none)."""
    return PurePosixPath(unquote(urlsplit(url).path)).name


def _register(rt: Runtime, tenant: str, analysis: Analysis, path: Path | None, filename: str,
              origin_type: str | None, context: dict | None, originator: Party | None = None) -> tuple[str, bool]:
    """Register for the tenant with Royal's extended events; (record id, newly registered)."""
    source = str(path) if path is not None else f"blake3:{analysis.digest.blake3}"
    try:
        [(rec, event_id)] = rt.service.register_many([(analysis, source, filename)], origin_type, context,
                                                     originator=originator, extended=True, tenant=tenant)
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    if event_id is None:
        if path is not None:
            path.unlink(missing_ok=True)  # the content is known: its first file stays the record's source
        return rec.id, False
    rt.accepted([rec.id])
    return rec.id, True


@router.post("/api/v1/content", status_code=202, response_model=Accepted, tags=["content"],
             summary="Register content: a multipart upload or a JSON {url}",
             responses={200: {"description": "Already registered: the existing record", "model": Accepted}},
             openapi_extra=json_body_doc(ContentFromUrl, extra=multipart_doc(UPLOAD_FIELDS)))
async def register_content(request: Request, tenant: str = Depends(api_auth.current_tenant)):
    """Hash, sign and queue for anchoring; 202 pending, or 200 already_registered with the first record."""
    rt = runtime(request)
    kind = media_type(request)
    if kind == "multipart/form-data":
        upload = await receive_upload(request, rt.uploads, rt.settings.caps, UPLOAD_FIELDS)
        try:
            context, origin = _context(upload.fields.get("context")), _origin_type(upload.fields.get("origin_type"))
            analysis = await _analyze_upload(rt, upload)
        except BaseException:
            upload.discard()
            raise
        path, filename = upload.path, upload.filename
    elif is_json(kind):
        body = parse_json(await read_limited(request, JSON_LIMIT), ContentFromUrl)
        context, origin = body.context, body.origin_type
        path, analysis = await _download(rt, body.url, "url")
        filename = _url_name(body.url) or path.name
    else:
        raise ApiError(415, f"expected multipart/form-data or application/json, got {kind or 'none'}")
    record_id, fresh = _register(rt, tenant, analysis, path, filename, origin, context)
    if not fresh:
        return JSONResponse({"record_id": record_id, "status": "already_registered"}, status_code=200)
    await _watermark(rt, record_id, path)
    return {"record_id": record_id, "status": "pending"}


async def _watermark(rt: Runtime, record_id: str, path: Path | None) -> None:
    """With --watermark, write a new record's marked copy; an image that cannot be marked keeps its record."""
    rec = rt.service.store.record(record_id)
    if rt.settings.watermark and path is not None and rt.service.needs_mark(rec):
        try:
            await rt.service.write_marked_copy(rec, str(path))
        except IngestError:  # too small, or the payload did not read back: no copy, GET .../marked says so
            pass


@router.post("/v0/provenance/register", status_code=202, tags=["royal"], summary="Royal: register a file by URL",
             openapi_extra=json_body_doc(RoyalRegister))
async def royal_register(request: Request, tenant: str = Depends(api_auth.current_tenant)):
    """Royal's register: the originator gets the NFT; every Royal event of the registration follows."""
    rt = runtime(request)
    body = await read_json(request, RoyalRegister)
    originator = Party(body.originator_id, username=f"user-{body.originator_id}")
    if body.file_url is None:
        if body.content_hash is None:
            raise ApiError(422, "file_url: give file_url, content_hash or both", "file_url")
        blake3 = _content_hash(body.content_hash)
        name = body.name or f"{blake3}.bin"
        record_id, fresh = _register(rt, tenant, Analysis.of_content_hash(blake3), None, name, None, body.context,
                                     originator)
    else:
        path, analysis = await _download(rt, body.file_url, "file_url")
        if body.content_hash is not None and _content_hash(body.content_hash) != analysis.digest.blake3:
            path.unlink(missing_ok=True)
            raise ApiError(422, f"content_hash: the file's BLAKE3 is {analysis.digest.blake3}", "content_hash")
        name = body.name or _url_name(body.file_url) or path.name
        record_id, fresh = _register(rt, tenant, analysis, path, name, None, body.context, originator)
        if fresh:
            await _watermark(rt, record_id, path)
    if not fresh:
        return JSONResponse({"id": record_id, "status": "already_registered"}, status_code=200)
    return {"id": record_id}


def _content_hash(text: str) -> str:
    """A BLAKE3 content hash as 64 lowercase hex digits ("0x" optional); 422 naming content_hash otherwise."""
    value = text.lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ApiError(422, "content_hash: must be a BLAKE3 hash, 64 hex digits with optional 0x", "content_hash")
    return value


@router.post("/api/v1/verify", tags=["verification"], summary="Verify a file: Tectra's four checks",
             openapi_extra={"requestBody": {"required": True, "content": multipart_doc((FILE_FIELD,))}})
async def verify(request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """Run the checks on the uploaded file, announce the result as content.verified, and return it."""
    rt = runtime(request)
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, f"expected multipart/form-data, got {media_type(request) or 'none'}")
    upload = await receive_upload(request, rt.uploads, rt.settings.caps, (FILE_FIELD,))
    try:
        analysis = await _analyze_upload(rt, upload, mark_key=rt.service.watermark_key)
    finally:
        upload.discard()
    data = verify_analysis(rt.service, analysis)  # in this thread: the store's connection belongs to it
    rt.service.emit_verified(data, tenant)
    rt.engine.notify()
    return data


@router.get("/api/v1/records/{record_id}", tags=["content"], summary="Show a record")
async def get_record(record_id: str, request: Request, tenant: str = Depends(api_auth.current_tenant)) -> dict:
    """Hashes, signature, batch, anchor receipt, Merkle proof and NFT of one of the tenant's records."""
    service = runtime(request).service
    shown = service.describe(record_id)
    if shown is None:
        raise ApiError(404, f"no record {record_id}")
    api_auth.check_record_owner(service.store, record_id, tenant)
    if shown["watermark"] is not None:  # the server's own path stays on the server
        shown["watermark"] = {**{k: v for k, v in shown["watermark"].items() if k != "path"},
                              "url": f"/api/v1/records/{record_id}/marked"}
    return shown


@router.get("/api/v1/records/{record_id}/marked", tags=["content"], summary="Download a record's watermarked copy",
            response_class=FileResponse,
            responses={200: {"description": "The marked copy", "content": {"image/jpeg": {}, "image/png": {}}}})
async def get_marked_copy(record_id: str, request: Request,
                          tenant: str = Depends(api_auth.current_tenant)) -> FileResponse:
    """The watermarked copy of one of the tenant's records (written when the server runs with --watermark)."""
    store = runtime(request).service.store
    if store.record(record_id) is None:
        raise ApiError(404, f"no record {record_id}")
    api_auth.check_record_owner(store, record_id, tenant)
    marked = store.watermark(record_id)
    if marked is None or not Path(marked["path"]).is_file():
        raise ApiError(404, f"record {record_id} has no watermarked copy (the server marks images of 128 px a side"
                            " or more when it runs with --watermark)")
    path = Path(marked["path"])
    return FileResponse(path, media_type="image/jpeg" if path.suffix == ".jpg" else "image/png", filename=path.name)
