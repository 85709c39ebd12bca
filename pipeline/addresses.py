"""Which IP addresses a download may reach, and an httpcore backend that connects only to checked ones."""
from __future__ import annotations

import ipaddress
import re
import socket
import typing
from collections.abc import Callable, Sequence

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Sequence[str]]

ALLOW_HINT = "pass --allow-private to allow"
BROADCAST = ipaddress.IPv4Address("255.255.255.255")
THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
IPV4_LIKE = re.compile(r"[0-9][0-9a-fA-FxX.]*")  # what inet_aton may read: 127.1, 2130706433, 0x7f.0.0.1, 0177.0.0.1
CATEGORIES: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda ip: ip.is_unspecified, "an unspecified address"),
    (lambda ip: ip.is_loopback, "a loopback address"),
    (lambda ip: ip.is_link_local, "a link-local address"),
    (lambda ip: ip.is_multicast, "a multicast address"),
    (lambda ip: ip == BROADCAST, "the broadcast address"),
    (lambda ip: ip in THIS_NETWORK, "a this-network address"),
    (lambda ip: ip in SHARED, "a shared (CGNAT) address"),
    (lambda ip: ip.is_reserved, "a reserved address"),
    (lambda ip: ip.is_private, "a private address"),
    (lambda ip: getattr(ip, "is_site_local", False), "a site-local address"),
    (lambda ip: not ip.is_global, "a non-public address"),
)
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)  # httpx's defaults


class AddressRefused(Exception):
    """A download would reach an address it must not; str() is the one-line cause."""


def parse_literal(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts (127.1, 2130706433, [::1]); None for a name."""
    text = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not IPV4_LIKE.fullmatch(text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, compatible) and the form's name, if any."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in NAT64):
        return "NAT64", low
    if ip in IPV4_COMPATIBLE and not (ip.is_unspecified or ip.is_loopback):
        return "IPv4-compatible", low
    return None


def forbidden(ip: IPAddress) -> str | None:
    """Why a download may not reach this address ("a loopback address"), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and not (ip.is_unspecified or ip.is_loopback):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, inner = embedded
            why = forbidden(inner)
            return why and f"{why} in {form} form ({inner})"
    return next((name for test, name in CATEGORIES if test(ip)), None)


def check_addresses(host: str, addresses: Sequence[str]) -> list[str]:
    """Return the addresses a name resolved to if every one is public; raise AddressRefused naming the first that is not."""
    if not addresses:
        raise AddressRefused(f"refused: {host} resolves to no address")
    for address in addresses:
        why = forbidden(ipaddress.ip_address(address))
        if why:
            raise AddressRefused(f"refused: {host} resolves to {address}, {why} ({ALLOW_HINT})")
    return list(addresses)


def check_literal(host: str, ip: IPAddress) -> None:
    """Raise AddressRefused if a literal address in a URL (in whatever form) is not public."""
    why = forbidden(ip)
    if why:
        plain = host.strip("[]").rstrip(".") == str(ip) or isinstance(ip, ipaddress.IPv6Address)
        shown = f"{host} is {why}" if plain else f"{host} is {ip}, {why}"
        raise AddressRefused(f"refused: {shown} ({ALLOW_HINT})")


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver gives for a name, in its order, each once."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each connection's host once, checks every address, then connects to a checked address, not the name."""

    def __init__(self, allow_private: bool = False, resolver: Resolver = system_resolver,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, timeout: float | None) -> list[str]:
        """The checked addresses to try for a host: its literal address, or every address it resolves to."""
        literal = parse_literal(host)
        if literal is not None:
            if not self.allow_private:
                check_literal(host, literal)
            return [str(literal)]
        try:
            with anyio.fail_after(timeout):
                found = await anyio.to_thread.run_sync(self.resolver, host, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        if self.allow_private:
            return list(found)
        return check_addresses(host, found)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        """Connect to the first checked address of host that answers; TLS above still verifies host's name."""
        error: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in await self.addresses(host, timeout):
            try:
                return await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def sleep(self, seconds: float) -> None:
        """Wait as the wrapped backend does."""
        await self.inner.sleep(seconds)


def guarded_transport(allow_private: bool = False, resolver: Resolver = system_resolver,
                      inner: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection, each redirect hop included, goes through a GuardedBackend."""
    transport = httpx.AsyncHTTPTransport(limits=LIMITS)
    # httpx has no public way to give its transport a network backend: swap in a pool built with one.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=LIMITS.max_connections,
        max_keepalive_connections=LIMITS.max_keepalive_connections, keepalive_expiry=LIMITS.keepalive_expiry,
        network_backend=GuardedBackend(allow_private, resolver, inner),
    )
    return transport
