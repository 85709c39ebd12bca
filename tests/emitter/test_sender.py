"""AiohttpSender against a real loopback server: statuses, timeouts, refused connections."""

import asyncio
import socket

import pytest
from aiohttp import web

from emitter.sender import AiohttpSender, SendResult


async def _serve(handler) -> tuple[web.AppRunner, str]:
    """Start `handler` on 127.0.0.1 at a free port; returns the runner and the base URL."""
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def test_posts_body_and_headers_and_reports_status() -> None:
    seen = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers["X-Test"], await request.read()))
        return web.Response(status=202)

    async def main() -> SendResult:
        runner, base = await _serve(handler)
        try:
            async with AiohttpSender(limit=4) as sender:
                return await sender.send(base + "/hooks", {"X-Test": "yes"}, b'{"a":1}', 5.0)
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert (result.status, result.error, result.ok) == (202, None, True)
    assert result.duration_ms > 0
    assert seen == [("/hooks", "yes", b'{"a":1}')]


def test_server_error_is_a_status_not_an_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def main() -> SendResult:
        runner, base = await _serve(handler)
        try:
            async with AiohttpSender() as sender:
                return await sender.send(base, {}, b"{}", 5.0)
        finally:
            await runner.cleanup()

    result = asyncio.run(main())
    assert (result.status, result.error, result.ok) == (503, None, False)


def test_timeout_becomes_a_result() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    async def main() -> SendResult:
        runner, base = await _serve(handler)
        try:
            async with AiohttpSender() as sender:
                return await sender.send(base, {}, b"{}", 0.05)
        finally:
            release.set()
            await runner.cleanup()

    result = asyncio.run(main())
    assert (result.status, result.error) == (None, "timeout after 0.05s")


def test_refused_connection_becomes_a_result() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> SendResult:
        async with AiohttpSender() as sender:
            return await sender.send(f"http://127.0.0.1:{port}/", {}, b"{}", 5.0)

    result = asyncio.run(main())
    assert result.status is None
    assert result.error == f"connection refused by 127.0.0.1:{port}"


def test_send_outside_context_manager_says_how_to_use_it() -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(AiohttpSender().send("http://127.0.0.1:1/", {}, b"", 1.0))
