"""Tests of pipeline.addresses: the address check itself, and downloads through the guarded backend with fake DNS answers."""

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpcore
import httpx
import pytest
from aiohttp import web

from pipeline.addresses import (
    AddressRefused,
    GuardedBackend,
    check_addresses,
    check_literal,
    forbidden,
    guarded_transport,
    parse_literal,
)
from pipeline.ingest import Caps, IngestError, SourceItem, fetch, make_client

HINT = "(pass --allow-private to allow)"
PUBLIC = "93.184.216.34"  # a public address the fake network routes to the loopback test server
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
CAPS = Caps(image=100_000, other=100_000)


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "a loopback address"),
    ("127.255.0.9", "a loopback address"),
    ("::1", "a loopback address"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.254", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fc00::1", "a private address"),
    ("fd12:3456::1", "a private address"),
    ("169.254.169.254", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("0.0.0.0", "an unspecified address"),
    ("::", "an unspecified address"),
    ("0.1.2.3", "a this-network address"),
    ("224.0.0.251", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("ff0e::1", "a multicast address"),
    ("255.255.255.255", "the broadcast address"),
    ("240.0.0.1", "a reserved address"),
    ("100.64.0.1", "a shared (CGNAT) address"),
    ("100.127.255.254", "a shared (CGNAT) address"),
    ("fec0::1", "a site-local address"),
    ("192.0.2.1", "a private address"),
    ("::ffff:127.0.0.1", "a loopback address in IPv4-mapped form (127.0.0.1)"),
    ("::ffff:10.0.0.5", "a private address in IPv4-mapped form (10.0.0.5)"),
    ("::127.0.0.1", "a loopback address in IPv4-compatible form (127.0.0.1)"),
    ("2002:a9fe:a9fe::1", "a link-local address in 6to4 form (169.254.169.254)"),
    ("64:ff9b::7f00:1", "a loopback address in NAT64 form (127.0.0.1)"),
    ("64:ff9b:1::a00:5", "a private address in NAT64 form (10.0.0.5)"),
])
def test_internal_addresses_are_refused_with_their_kind(address: str, why: str):
    assert forbidden(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", [
    "93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1",
    "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_addresses_pass(address: str):
    assert forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("host", "message"), [
    ("127.1", "127.1 is 127.0.0.1, a loopback address"),
    ("2130706433", "2130706433 is 127.0.0.1, a loopback address"),
    ("0x7f.0.0.1", "0x7f.0.0.1 is 127.0.0.1, a loopback address"),
    ("0177.0.0.1", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("0x7f000001", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("127.0.0.1.", "127.0.0.1. is a loopback address"),
    ("[::ffff:127.0.0.1]", "[::ffff:127.0.0.1] is a loopback address in IPv4-mapped form (127.0.0.1)"),
    ("[::1]", "[::1] is a loopback address"),
    ("0.0.0.0", "0.0.0.0 is an unspecified address"),
    ("0", "0 is 0.0.0.0, an unspecified address"),
    ("10.0.0.5", "10.0.0.5 is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
])
def test_disguised_literals_are_read_as_resolvers_read_them(host: str, message: str):
    literal = parse_literal(host)
    assert literal is not None
    with pytest.raises(AddressRefused) as info:
        check_literal(host, literal)
    assert str(info.value) == f"refused: {message} {HINT}"


def refusal(url: str, directory: Path, transport: httpx.AsyncBaseTransport | None = None) -> IngestError:
    """The IngestError a fetch of url raises through make_client(transport) (the guarded default if None)."""
    async def main():
        async with make_client(transport) as client:
            await fetch(SourceItem(url, "url", url), directory, client, CAPS, deadline=10)

    with pytest.raises(IngestError) as info:
        asyncio.run(main())
    return info.value


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "abc", "deadbeef", "cafe.example", "123.example"])
def test_names_are_not_literals(host: str):
    assert parse_literal(host) is None


def test_every_resolved_address_is_checked():
    assert check_addresses("ok.test", [PUBLIC, "2606:4700::1111"]) == [PUBLIC, "2606:4700::1111"]
    with pytest.raises(AddressRefused) as info:
        check_addresses("x", [PUBLIC, "10.0.0.5"])
    assert str(info.value) == f"refused: x resolves to 10.0.0.5, a private address {HINT}"
    with pytest.raises(AddressRefused, match="refused: x resolves to no address"):
        check_addresses("x", [])


class FakeNet(httpcore.AsyncNetworkBackend):
    """A network where PUBLIC is the loopback test server; any other non-loopback address fails the test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connected: list[str] = []
        self.real = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        """Record the host asked for; connect to the loopback server in its place if it is PUBLIC."""
        self.connected.append(host)
        if host == PUBLIC:
            return await self.real.connect_tcp("127.0.0.1", self.port, timeout=timeout)
        if host == "127.0.0.1":
            return await self.real.connect_tcp(host, port, timeout=timeout)
        raise AssertionError(f"the test asked to connect to {host}")

    async def sleep(self, seconds: float) -> None:
        """Wait."""
        await asyncio.sleep(seconds)


def answers(*rounds: list[str]) -> Callable[[str], list[str]]:
    """A resolver giving each round's answer in turn (the last one again after that), counting its calls."""
    calls: list[str] = []

    def resolve(host: str) -> list[str]:
        calls.append(host)
        return rounds[min(len(calls), len(rounds)) - 1]

    resolve.calls = calls
    return resolve


def app() -> web.Application:
    """Routes: a photo, a redirect that closes its connection, and redirects to given targets."""

    async def photo(request: web.Request) -> web.Response:
        return web.Response(body=PHOTO, content_type="image/jpeg")

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": request.query["to"], "Connection": "close"})

    application = web.Application()
    application.router.add_get("/photo.jpg", photo)
    application.router.add_get("/redirect", redirect)
    return application


@contextlib.asynccontextmanager
async def loopback_server() -> AsyncIterator[int]:
    """Serve app() on 127.0.0.1; yields the port."""
    runner = web.AppRunner(app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def download(url: str, dest: Path, resolver: Callable[[str], list[str]] | None = None,
                   allow_private: bool = False, port: int = 0) -> tuple[Path, FakeNet]:
    """Fetch url through the guarded backend over FakeNet and the given DNS answers, bounded to 10 s."""
    net = FakeNet(port)
    transport = guarded_transport(allow_private, resolver or answers([]), net)
    async with make_client(transport) as client:
        try:
            path, _ = await fetch(SourceItem(url, "url", url), dest, client, CAPS, deadline=10)
        finally:
            assert all(parse_literal(host) for host in net.connected), net.connected  # pinned: never a name
    return path, net


def test_a_public_answer_is_pinned_and_fetched(tmp_path: Path):
    async def main():
        async with loopback_server() as port:
            resolver = answers([PUBLIC])
            path, net = await download(f"http://photos.test:{port}/photo.jpg", tmp_path, resolver, port=port)
            return path, net, resolver

    path, net, resolver = asyncio.run(main())
    assert path.read_bytes() == PHOTO
    assert net.connected == [PUBLIC] and resolver.calls == ["photos.test"]


def test_rebinding_between_redirect_hops_is_refused(tmp_path: Path):
    async def main():
        async with loopback_server() as port:
            resolver = answers([PUBLIC], ["127.0.0.1"])
            url = f"http://rebind.test:{port}/redirect?to=http://rebind.test:{port}/photo.jpg"
            with pytest.raises(IngestError) as info:
                await download(url, tmp_path, resolver, port=port)
            return url, info.value, resolver

    url, error, resolver = asyncio.run(main())
    assert str(error) == f"{url}: refused: rebind.test resolves to 127.0.0.1, a loopback address {HINT}"
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("target", "dns", "cause"), [
    ("http://169.254.169.254/latest/meta-data/", [], "169.254.169.254 is a link-local address"),
    ("http://127.1/", [], "127.1 is 127.0.0.1, a loopback address"),
    ("http://[::ffff:10.0.0.1]/", [], "::ffff:10.0.0.1 is a private address in IPv4-mapped form (10.0.0.1)"),
    ("http://intranet.test/", ["10.0.0.5"], "intranet.test resolves to 10.0.0.5, a private address"),
    ("http://mixed.test/", [PUBLIC, "192.168.0.7"], "mixed.test resolves to 192.168.0.7, a private address"),
])
def test_redirects_to_internal_addresses_are_refused(tmp_path: Path, target: str, dns: list[str], cause: str):
    async def main():
        async with loopback_server() as port:
            resolver = answers([PUBLIC], dns)
            url = f"http://start.test:{port}/redirect?to={target}"
            with pytest.raises(IngestError) as info:
                await download(url, tmp_path, resolver, port=port)
            return url, info.value

    url, error = asyncio.run(main())
    assert str(error) == f"{url}: refused: {cause} {HINT}"


def test_allow_private_reaches_loopback_names_through_the_checked_address(tmp_path: Path):
    async def main():
        async with loopback_server() as port:
            resolver = answers(["127.0.0.1"])
            return await download(f"http://intranet.test:{port}/photo.jpg", tmp_path, resolver,
                                  allow_private=True, port=port)

    path, net = asyncio.run(main())
    assert path.read_bytes() == PHOTO and net.connected == ["127.0.0.1"]


def test_a_name_that_does_not_resolve_is_one_line(tmp_path: Path):
    def no_such_name(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    url = "http://nowhere.test/a.jpg"
    with pytest.raises(IngestError) as info:
        asyncio.run(download(url, tmp_path, no_such_name))
    assert str(info.value) == f"{url}: ConnectError: cannot resolve nowhere.test: Name or service not known"


def test_a_slow_resolver_ends_at_the_connect_timeout():
    def slow(host: str) -> list[str]:
        time.sleep(2)
        return [PUBLIC]

    async def main():
        backend = GuardedBackend(resolver=slow, inner=FakeNet(0))
        await backend.connect_tcp("slow.test", 80, timeout=0.2)

    with pytest.raises(httpcore.ConnectTimeout, match=r"resolving slow\.test took over 0\.2 s"):
        asyncio.run(main())


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "127.0.0.1",
                                  "[::1]"])
def test_the_default_client_refuses_disguised_loopback_literals(tmp_path: Path, host: str):
    url = f"http://{host}:9/a.jpg"
    error = str(refusal(url, tmp_path))
    assert error.startswith(f"{url}: refused: {host.strip('[]')} is ")
    assert error.endswith(HINT)


def test_a_literal_httpx_cannot_parse_is_still_refused(tmp_path: Path):
    url = "http://0177.0.0.1:9/a.jpg"
    assert str(refusal(url, tmp_path)) == f"{url}: InvalidURL: Invalid IPv4 address: '0177.0.0.1'"


class NoConnections(httpx.AsyncBaseTransport):
    """A transport that fails the test if any request reaches it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Fail: nothing should have been sent."""
        raise AssertionError(f"request sent to {request.url}")


def test_urls_with_credentials_are_refused_before_any_request(tmp_path: Path):
    url = "http://user:secret@files.test/a.jpg"
    assert str(refusal(url, tmp_path, NoConnections())) == f"{url}: refused: URLs with credentials are not fetched"


def test_a_redirect_to_another_scheme_is_refused(tmp_path: Path):
    async def main():
        async with loopback_server() as port:
            url = f"http://start.test:{port}/redirect?to=file:///etc/hostname"
            with pytest.raises(IngestError) as info:
                await download(url, tmp_path, answers([PUBLIC]), port=port)
            return url, info.value

    url, error = asyncio.run(main())
    assert str(error) == f"{url}: UnsupportedProtocol: Request URL has an unsupported protocol 'file://'."


def test_the_client_ignores_environment_proxies(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    async def main() -> httpx.AsyncClient:
        async with make_client() as client:
            return client

    client = asyncio.run(main())
    assert client.trust_env is False and not any(client._mounts.values())


def test_an_unparsable_url_is_one_line(tmp_path: Path):
    url = "http://[::1/a.jpg"
    assert str(refusal(url, tmp_path, NoConnections())) == f"{url}: invalid URL: Invalid IPv6 URL"
