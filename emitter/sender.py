"""The delivery transport: one narrow send() interface and its aiohttp implementation."""

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp


@dataclass
class SendResult:
    """What one POST came to: the HTTP status, or None and an error, and how long it took."""

    status: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class Sender(Protocol):
    """Anything that can POST a body with headers and report the result without raising."""

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> SendResult:
        """POST `body` to `url`; network failures come back as SendResult(None, error, ...)."""
        ...


class AiohttpSender:
    """A Sender over one aiohttp ClientSession with a pooled TCPConnector; use it as `async with`."""

    def __init__(self, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def __aenter__(self) -> "AiohttpSender":
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self._limit))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> SendResult:
        """POST once; timeouts and connection errors become SendResult(None, "<what happened>", ...)."""
        if self._session is None:
            raise RuntimeError("AiohttpSender is not open: use it as 'async with AiohttpSender() as sender'")
        client_timeout = self._timeouts.get(timeout)
        if client_timeout is None:
            client_timeout = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout)
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=body, headers=headers, timeout=client_timeout) as response:
                await response.read()
                status, error = response.status, None
        except asyncio.TimeoutError:
            status, error = None, f"timeout after {timeout:g}s"
        except aiohttp.ClientConnectorError as exc:
            status, error = None, _connect_error(exc)
        except aiohttp.ClientError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        return SendResult(status, error, (time.perf_counter() - started) * 1000.0)


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    """A one-line description of a failed connection."""
    where = f"{exc.host}:{exc.port}"
    if isinstance(exc.os_error, ConnectionRefusedError):
        return f"connection refused by {where}"
    return f"cannot connect to {where}: {exc.os_error.strerror or exc.os_error}"
