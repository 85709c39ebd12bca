"""Errors of the HTTP API as JSON {"error", "field"?}, and bounded reading of JSON request bodies."""
from __future__ import annotations

import json
import logging
import re
from typing import TypeVar
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from emitter.safejson import MAX_DEPTH, strict_loads, too_deep, unpaired_surrogate_at

JSON_LIMIT = 1024 * 1024  # bytes of a JSON request body
HOST = re.compile(r"[a-z0-9._~-]+|[0-9a-f:.]+")  # a host name as urlsplit lowercases it, or an IP address
# Deeper JSON is refused before parsing: py_ecc raises the recursion limit to 100000 on import, so the
# C decoder would overflow the stack (a crash, not a RecursionError) on a body of "[[[[...".
log = logging.getLogger("provsim.api")
M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """A refused request: HTTP status, one-line message, and the field at fault when there is one."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    """The JSON body every refusal has: {"error"} plus {"field"} when one field is at fault."""
    body = {"error": message} if field is None else {"error": message, "field": field}
    return JSONResponse(body, status_code=status, headers=headers)


def field_name(loc: tuple | list) -> str | None:
    """A validation error's location as a field path ("events[0]", "context"), without "body"/"query"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


def validation_error(errors: list[dict]) -> ApiError:
    """A 422 naming the first invalid field and why."""
    first = errors[0]
    field = field_name(first.get("loc", ()))
    reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        reason = "unknown field"
    return ApiError(422, f"{field}: {reason}" if field else reason, field)


def install_error_handlers(app: FastAPI) -> None:
    """Make every refusal JSON: API errors, validation errors, unknown routes and methods, crashes."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        """A refusal raised by a route."""
        return error_response(exc.status, exc.message, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """A path or query parameter FastAPI could not validate."""
        err = validation_error(list(exc.errors()))
        return error_response(err.status, err.message, err.field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """An unknown route or a method the route does not take."""
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        """A bug: logged, answered with a generic 500."""
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error")


def check_http_url(url: str, field: str) -> None:
    """422 naming `field` unless the URL is http(s) with an ASCII host name or address and no spaces or controls."""
    # A non-ASCII host is refused rather than guessed at: IDNA has two incompatible versions, so the client
    # sends the xn-- form it means.
    try:
        parts = urlsplit(url)
        usable = (parts.scheme in ("http", "https") and bool(HOST.fullmatch(parts.hostname or ""))
                  and parts.port != 0 and not any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in url))
    except ValueError:  # an unclosed IPv6 bracket, a port out of range
        usable = False
    if not usable:
        raise ApiError(422, f"{field}: must be an http:// or https:// URL with an ASCII host", field)


def media_type(request: Request) -> str:
    """The request's media type, lowercased, without parameters ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(content_type: str) -> bool:
    """Whether a media type is JSON (application/json or application/*+json)."""
    return content_type == "application/json" or (content_type.startswith("application/")
                                                  and content_type.endswith("+json"))


def declared_length(request: Request) -> int | None:
    """The Content-Length the client announced, if any."""
    value = request.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is announced or seen to pass `limit` bytes."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client went away before the body ended") from None
    return b"".join(chunks)


async def read_json(request: Request, model: type[M]) -> M:
    """The JSON body validated as `model`: 415 if not JSON, 413 over 1 MiB, 400 if malformed, 422 if invalid."""
    if not is_json(media_type(request)):
        raise ApiError(415, f"expected Content-Type application/json, got {media_type(request) or 'none'}")
    return parse_json(await read_limited(request, JSON_LIMIT), model)


def parse_json(body: bytes, model: type[M]) -> M:
    """Parse and validate a JSON body already read."""
    if not body.strip():
        raise ApiError(400, "request body is empty: expected a JSON object")
    if too_deep(body):
        raise ApiError(400, f"request body nests arrays or objects deeper than {MAX_DEPTH} levels")
    try:
        data = strict_loads(body)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:  # not Unicode, an integer with too many digits, NaN, a number past a double's range
        raise ApiError(400, f"request body is not usable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "request body must be a JSON object")
    check_text(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


def check_text(data, path: str = "") -> None:
    """422 naming the field when parsed JSON holds a lone surrogate, which nothing downstream can encode."""
    where = unpaired_surrogate_at(data, path)
    if where is not None:
        raise ApiError(422, f"{where}: holds an unpaired \\ud800-\\udfff escape, which is not Unicode text", where)


def json_body_doc(model: type[BaseModel], extra: dict | None = None) -> dict:
    """openapi_extra documenting a JSON request body read by hand (plus other media types in `extra`)."""
    content = {"application/json": {"schema": model.model_json_schema()}, **(extra or {})}
    return {"requestBody": {"required": True, "content": content}}
