"""Manifest URLs, fetched with care: the SSRF guard.

The guard stands where the connection is made. The connector is given a socket factory that
sees the exact address each socket is about to connect to (after the HTTP client has parsed the
URL, normalised its host with IDNA and resolved it) and refuses, before any socket exists, an
address that is not public unicast. Names resolved at connect time (DNS rebinding), literal
addresses the client connects to without asking DNS, and every redirect all pass through it.

Before that, each URL (first hop and every ``Location``) is parsed with yarl, the parser aiohttp
itself uses, and the very URL object checked is the one requested: a host written with
Unicode dots or digits (``127。0。0。1``, ``１２７.０.０.１``) is checked as the ``127.0.0.1`` the
client will use, an IPv4 address in a C-library spelling (``2130706433``, ``0x7f.1``, ``127.1``)
as the address it means, and a host that is neither an address nor a DNS name is refused. That
early check gives the clear answer; the connect-time check is the one that cannot be bypassed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.errors import AppError

MAX_REDIRECTS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Which addresses a fetch may connect to, given the address and the port (tests override it).
Policy = Callable[[IPAddress, int], bool]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # carries an IPv4 address in its last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use translation: never public
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated; :: and ::1 are in it too
# A host name as the client sends it to DNS once IDNA has made it ASCII.
_HOST_NAME = re.compile(r"(?=[^.].{0,252}$)([a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?", re.I)
# What the C library may read as an IPv4 address: 127.1, 0177.0.0.1, 0x7f.1, 2130706433.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.I)
# Names that are loopback by definition (RFC 6761), whatever a resolver makes of them.
_LOCALHOST = re.compile(r"(.+\.)?localhost\.?", re.I)
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def public_address(ip: IPAddress) -> bool:
    """True for public unicast addresses: not loopback, private, link-local, shared (CGNAT),
    multicast, broadcast, reserved or unspecified.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64 ``64:ff9b::/96``, 6to4
    ``2002::/16``) is judged as the IPv4 address it carries; the deprecated IPv4-compatible
    range, local-use NAT64 and any address with a zone are refused.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            return public_address(carried)
        if ip in _IPV4_COMPATIBLE or ip in _NAT64_LOCAL:
            return False
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host (as yarl gives it) spells, in any spelling the client or the C
    library reads as an address, and loopback for ``localhost`` names; None for other names."""
    if _LOCALHOST.fullmatch(host):
        return _LOOPBACK
    bare = host[:-1] if host.endswith(".") else host
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


class AddressRefused(OSError):
    """Raised by the connect-time guard instead of creating a socket."""

    def __init__(self) -> None:
        # One message for every refusal: when all of a name's addresses are refused, the
        # connection library raises the first of identical errors, and this type survives.
        super().__init__("address refused by the import URL policy")


def guarded_socket_factory(allowed: Policy) -> Callable[[tuple], socket.socket]:
    """A ``TCPConnector(socket_factory=...)``: the socket is created only when the address it
    will connect to is allowed.

    The connector connects to exactly ``addr_info[4]``; anything there that is not a plain IP
    address (the socket layer would resolve it again, with its own idea of spellings) is refused
    like a private address.
    """
    def factory(addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = sockaddr[0]
        if family == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3] and "%" not in host:
            host = f"{host}%{sockaddr[3]}"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise AddressRefused() from None
        if not allowed(address, sockaddr[1]):
            raise AddressRefused()
        return socket.socket(family, type_, proto)

    return factory


def _shown(url: object) -> str:
    """A URL for a report: a redirect's bytes need not be UTF-8 (aiohttp keeps the bad ones as
    lone surrogates, which JSON in PostgreSQL refuses), so those are written as escapes."""
    return str(url).encode("utf-8", "backslashreplace").decode("utf-8")


def _invalid(url: object, message: str = "The URL is not valid.") -> AppError:
    return AppError(422, "invalid_url", message, {"url": _shown(url)})


def _blocked(host: str) -> AppError:
    return AppError(
        422,
        "private_address",
        "The URL points to a private, loopback or link-local address, which imports may not "
        "reach.",
        {"host": _shown(host)},
    )


@dataclass
class UrlFetcher:
    """Fetches manifest URLs: http(s) only, public addresses only (unless allowed), redirects
    followed by hand and re-checked (at most 5), size and time limited.

    The content type is whatever the bytes say later; response headers are not trusted.
    """

    max_bytes: int
    timeout: float
    allow_private: bool = False
    allowed: Policy | None = None  # overrides the address policy (tests)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    def _policy(self) -> Policy:
        if self.allowed is not None:
            return self.allowed
        if self.allow_private:
            return lambda ip, port: True
        return lambda ip, port: public_address(ip)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_url(self, url: str, base: URL | None = None) -> URL:
        """The URL to request, parsed (and joined to ``base``) as aiohttp parses it, refused
        early when its host spells an address the policy refuses."""
        try:
            target = URL(url)
            if base is not None:
                target = base.join(target)
            host = target.raw_host
            port = target.port
        except (ValueError, TypeError, UnicodeError):
            raise _invalid(url) from None
        if target.scheme not in ("http", "https"):
            raise AppError(422, "unsupported_url", "Only http and https URLs can be imported.",
                           {"url": _shown(url)})
        if not host or port is None:
            raise _invalid(url, "The URL has no host.")
        address = literal_address(host)
        if address is None:
            if not _HOST_NAME.fullmatch(host):
                raise _invalid(url, "The URL's host is neither a name nor an address.")
        elif not self._policy()(address, port):
            raise _blocked(host)
        return target

    async def fetch(self, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise AppError(422, "fetch_timeout", f"The URL did not answer within "
                           f"{self.timeout:g} seconds.", {"url": _shown(url)}) from None

    async def _fetch(self, url: str) -> bytes:
        if self._session is None:
            # No proxies from the environment (they would connect on our behalf, unchecked),
            # no cookies kept between fetches.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    resolver=aiohttp.ThreadedResolver(),
                    socket_factory=guarded_socket_factory(self._policy()),
                    limit=4,
                ),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        target = self._check_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with self._session.get(target, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise AppError(422, "fetch_failed", "The URL redirects nowhere.",
                                           {"url": _shown(target)})
                        target = self._check_url(location, base=target)
                        continue
                    if response.status != 200:
                        raise AppError(
                            422, "fetch_failed",
                            f"The URL answered with HTTP status {response.status}.",
                            {"url": _shown(target), "status": response.status},
                        )
                    return await self._read(response)
            except aiohttp.ClientError as error:
                if isinstance(getattr(error, "os_error", None), AddressRefused):
                    raise _blocked(target.raw_host or "") from None
                if isinstance(error, aiohttp.InvalidURL):
                    raise _invalid(target) from None
                raise AppError(422, "fetch_failed", "The URL could not be fetched.",
                               {"url": _shown(target)}) from None
        raise AppError(422, "too_many_redirects",
                       f"The URL redirects more than {MAX_REDIRECTS} times.", {"url": _shown(url)})

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise too_large(declared, self.max_bytes)
        parts = []
        total = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            total += len(chunk)
            if total > self.max_bytes:
                raise too_large(total, self.max_bytes)
            parts.append(chunk)
        return b"".join(parts)

