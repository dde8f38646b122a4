"""Manifest URLs, fetched with care: the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.errors import AppError

MAX_REDIRECTS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def public_address(ip: IPAddress) -> bool:
    """True for addresses on the public internet: not loopback, private, link-local,
    multicast, reserved or unspecified (IPv4-mapped IPv6 judged as the IPv4 it carries)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _blocked(host: str) -> AppError:
    return AppError(
        422,
        "private_address",
        "The URL points to a private, loopback or link-local address, which imports may not "
        "reach.",
        {"host": host},
    )


class GuardedResolver(AbstractResolver):
    """Resolves with the system resolver, then drops the addresses ``allowed`` refuses.

    aiohttp connects to the address returned here, so the address checked is the address used:
    a DNS answer that changes between check and connection (rebinding) cannot slip through.
    """

    def __init__(self, allowed: Callable[[IPAddress], bool]) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allowed = allowed
        self.refused: str | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = [a for a in answers if self._allowed(ipaddress.ip_address(a["host"]))]
        if not kept:
            self.refused = host
            raise OSError(f"{host} resolves only to refused addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class UrlFetcher:
    """Fetches manifest URLs: http(s) only, public addresses only (unless allowed), redirects
    followed by hand and re-checked (at most 5), size and time limited.

    The content type is whatever the bytes say later; response headers are not trusted.
    """

    max_bytes: int
    timeout: float
    allow_private: bool = False
    allowed: Callable[[IPAddress], bool] | None = None  # overrides the address policy (tests)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _resolver: GuardedResolver | None = field(default=None, init=False, repr=False)

    def _policy(self) -> Callable[[IPAddress], bool]:
        if self.allowed is not None:
            return self.allowed
        return (lambda ip: True) if self.allow_private else public_address

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise AppError(422, "invalid_url", "The URL is not valid.", {"url": url}) from None
        if parts.scheme.lower() not in ("http", "https"):
            raise AppError(422, "unsupported_url", "Only http and https URLs can be imported.",
                           {"url": url})
        if not host:
            raise AppError(422, "invalid_url", "The URL has no host.", {"url": url})
        # aiohttp skips the resolver for literal addresses: check those here.
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return host
        if not self._policy()(literal):
            raise _blocked(host)
        return host

    async def fetch(self, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise AppError(422, "fetch_timeout", f"The URL did not answer within "
                           f"{self.timeout:g} seconds.", {"url": url}) from None

    async def _fetch(self, url: str) -> bytes:
        if self._session is None:
            self._resolver = GuardedResolver(self._policy())
            # No proxies from the environment (they would connect on our behalf, unchecked),
            # no cookies kept between fetches.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=self._resolver, limit=4),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        assert self._resolver is not None
        for _ in range(MAX_REDIRECTS + 1):
            host = self._check_url(url)
            self._resolver.refused = None
            try:
                async with self._session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise AppError(422, "fetch_failed", "The URL redirects nowhere.",
                                           {"url": url})
                        url = urljoin(url, location)
                        continue
                    if response.status != 200:
                        raise AppError(
                            422, "fetch_failed",
                            f"The URL answered with HTTP status {response.status}.",
                            {"url": url, "status": response.status},
                        )
                    return await self._read(response)
            except aiohttp.ClientError:
                if self._resolver.refused is not None:
                    raise _blocked(host) from None
                raise AppError(422, "fetch_failed", "The URL could not be fetched.",
                               {"url": url}) from None
        raise AppError(422, "too_many_redirects",
                       f"The URL redirects more than {MAX_REDIRECTS} times.", {"url": url})

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

