"""The SSRF matrix: every spelling of an inside address is refused, and nothing connects.

Real listeners on 127.0.0.1 (and ::1 where the machine has it) record every connection they
accept. Each spelling of a loopback, private or otherwise non-public address goes through the
real fetcher (and a few through the real import endpoint), first hop and redirect, and must be
refused with 422 ``private_address`` or ``invalid_url`` while the listeners see no connection at
all. The control tests allow private URLs and show that the same listeners do see the fetcher
when it is let through: the matrix tests the guard, not a broken fetcher.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import aiohttp
import pytest

from ecogram.catalog.sources.fetch import (
    AddressRefused,
    UrlFetcher,
    guarded_socket_factory,
    public_address,
)
from ecogram.errors import AppError
from tests.catalog.photos import make_photo

PHOTO = make_photo(7)
PRIVATE, INVALID = "private_address", "invalid_url"


class Listener:
    """A TCP listener that records every connection it accepts and answers each request with
    the raw bytes ``respond(path)`` gives (an HTTP/1.1 response, written as is)."""

    def __init__(self, respond: Callable[[str], bytes]) -> None:
        self.respond = respond
        self.accepted: list[tuple] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str) -> Listener:
        self.server = await asyncio.start_server(self._accept, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(writer.get_extra_info("peername"))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = head.split(b" ", 2)[1].decode("latin-1")
            writer.write(self.respond(path))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def _photo(path: str) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(PHOTO)) + PHOTO


def _redirect(location: bytes) -> bytes:
    return (b"HTTP/1.1 302 Found\r\nLocation: " + location
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _ipv6_loopback()


@pytest.fixture
async def traps():
    """The loopback listeners no refused URL may reach: 127.0.0.1 and, if any, ::1."""
    four = await Listener(_photo).start("127.0.0.1")
    six = await Listener(_photo).start("::1") if HAS_IPV6 else None
    yield four, six
    await four.close()
    if six is not None:
        await six.close()


def _fill(template: str, traps) -> str:
    four, six = traps
    if "{p6}" in template and six is None:
        pytest.skip("no IPv6 loopback on this machine")
    return template.format(p=four.port, p6=six.port if six is not None else 0)


def _connections(traps) -> list[tuple]:
    four, six = traps
    return four.accepted + (six.accepted if six is not None else [])


# Each spelling, the refusal expected. {p} is the 127.0.0.1 listener's port, {p6} the ::1 one's.
# Addresses no listener can stand on (link-local, CGNAT, multicast...) must be refused by the
# guard, which their code shows: a connection attempt would end in fetch_failed or a timeout.
MATRIX = [
    ("http://127.0.0.1:{p}/a.jpg", PRIVATE),                   # the plain spelling
    ("http://127\u30020\u30020\u30021:{p}/a.jpg", PRIVATE),    # ideographic full stop
    ("http://127\uff0e0\uff0e0\uff0e1:{p}/a.jpg", PRIVATE),    # full-width full stop
    ("http://127\uff610\uff610\uff611:{p}/a.jpg", PRIVATE),    # half-width ideographic stop
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/a.jpg", PRIVATE),  # full-width digits
    ("http://\u2460\u2461\u2466.0.0.1:{p}/a.jpg", PRIVATE),    # circled digits
    ("http://2130706433:{p}/a.jpg", PRIVATE),                  # one decimal number
    ("http://0177.0.0.1:{p}/a.jpg", PRIVATE),                  # octal
    ("http://0x7f.1:{p}/a.jpg", PRIVATE),                      # hexadecimal, short
    ("http://0x7f000001:{p}/a.jpg", PRIVATE),                  # one hexadecimal number
    ("http://127.1:{p}/a.jpg", PRIVATE),                       # short form
    ("http://127.0.1:{p}/a.jpg", PRIVATE),
    ("http://0:{p}/a.jpg", PRIVATE),                           # 0.0.0.0, which is this host
    ("http://0.0.0.0:{p}/a.jpg", PRIVATE),
    ("http://127.0.0.1.:{p}/a.jpg", PRIVATE),                  # trailing dot
    ("http://localhost:{p}/a.jpg", PRIVATE),                   # a name: judged after DNS
    ("http://localhost.:{p}/a.jpg", PRIVATE),
    ("http://LocalHost:{p}/a.jpg", PRIVATE),
    ("http://\u2113ocalhost:{p}/a.jpg", PRIVATE),              # script small l → localhost
    ("http://%31%32%37.0.0.1:{p}/a.jpg", INVALID),             # percent-encoded host
    ("http://127.0.0.1%00.example.com:{p}/a.jpg", INVALID),
    ("http://public.example.com@127.0.0.1:{p}/a.jpg", PRIVATE),  # userinfo
    ("http://public.example.com:80@127.0.0.1:{p}/a.jpg", PRIVATE),
    ("http://127.0.0.1:{p}\\@public.example.com/a.jpg", INVALID),  # parsers disagree on '\'
    ("http://[::ffff:127.0.0.1]:{p}/a.jpg", PRIVATE),          # IPv4-mapped
    ("http://[::ffff:7f00:1]:{p}/a.jpg", PRIVATE),
    ("http://[::127.0.0.1]:{p}/a.jpg", PRIVATE),               # IPv4-compatible (deprecated)
    ("http://[64:ff9b::7f00:1]:{p}/a.jpg", PRIVATE),           # NAT64
    ("http://[64:ff9b::a00:1]:{p}/a.jpg", PRIVATE),            # NAT64 of 10.0.0.1
    ("http://[64:ff9b:1::7f00:1]:{p}/a.jpg", PRIVATE),         # local-use NAT64
    ("http://[2002:7f00:1::]:{p}/a.jpg", PRIVATE),             # 6to4
    ("http://[::1]:{p6}/a.jpg", PRIVATE),
    ("http://[0:0:0:0:0:0:0:1]:{p6}/a.jpg", PRIVATE),
    ("http://[::1%25lo]:{p6}/a.jpg", PRIVATE),                 # with a zone
    ("http://[::]:{p6}/a.jpg", PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),     # cloud metadata
    ("http://[fd00:ec2::254]/latest/meta-data/", PRIVATE),     # its IPv6 twin
    ("http://100.64.0.1/a.jpg", PRIVATE),                      # CGNAT
    ("http://10.0.0.1/a.jpg", PRIVATE),
    ("http://172.16.0.1/a.jpg", PRIVATE),
    ("http://192.168.0.1/a.jpg", PRIVATE),
    ("http://224.0.0.1/a.jpg", PRIVATE),                       # multicast
    ("http://255.255.255.255/a.jpg", PRIVATE),                 # broadcast
    ("http://240.0.0.1/a.jpg", PRIVATE),                       # reserved
    ("http://[fe80::1]/a.jpg", PRIVATE),                       # link-local
    ("http://[fc00::1]/a.jpg", PRIVATE),                       # unique local
    ("http://[ff02::1]/a.jpg", PRIVATE),                       # multicast
    ("http://[ff0e::1]/a.jpg", PRIVATE),                       # global-scope multicast
]

# Locations the redirecting listener sends, raw bytes on the wire: UTF-8 where the spelling has
# it. Relative ones are joined to the redirecting URL, as a client must.
REDIRECTS = [
    ("http://127\u30020\u30020\u30021:{p}/a.jpg", PRIVATE),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/a.jpg", PRIVATE),
    ("//127\u30020\u30020\u30021:{p}/a.jpg", PRIVATE),            # scheme-relative
    ("http://2130706433:{p}/a.jpg", PRIVATE),
    ("http://0x7f.1:{p}/a.jpg", PRIVATE),
    ("http://127.0.0.1:{p}/a.jpg", PRIVATE),
    ("http://localhost:{p}/a.jpg", PRIVATE),
    ("http://\u2113ocalhost:{p}/a.jpg", PRIVATE),
    ("http://public.example.com@127.0.0.1:{p}/a.jpg", PRIVATE),
    ("http://[::ffff:127.0.0.1]:{p}/a.jpg", PRIVATE),
    ("http://[::1]:{p6}/a.jpg", PRIVATE),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
    ("http://%31%32%37.0.0.1:{p}/a.jpg", INVALID),
]


def _ids(cases):
    return [template.encode("ascii", "backslashreplace").decode() for template, _ in cases]


def _fetcher(**kwargs) -> UrlFetcher:
    return UrlFetcher(max_bytes=1024 * 1024, timeout=5, **kwargs)


async def _outcome(fetcher: UrlFetcher, url: str) -> str:
    """``"fetched"`` or the refusal's code (always a 422)."""
    try:
        data = await fetcher.fetch(url)
    except AppError as error:
        assert error.status == 422, (error.status, error.code)
        return error.code
    finally:
        await fetcher.close()
    assert data == PHOTO
    return "fetched"


@pytest.mark.parametrize("template, code", MATRIX, ids=_ids(MATRIX))
async def test_first_hop_is_refused_before_any_connection(traps, template, code):
    url = _fill(template, traps)
    assert await _outcome(_fetcher(), url) == code
    assert _connections(traps) == []


@pytest.fixture
async def redirector():
    """A loopback listener that answers /{n} with a redirect to the n-th Location it is given."""
    locations: list[bytes] = []

    def respond(path: str) -> bytes:
        return _redirect(locations[int(path.strip("/"))])

    listener = await Listener(respond).start("127.0.0.1")
    listener.locations = locations  # type: ignore[attr-defined]
    yield listener
    await listener.close()


def _only_port(port: int):
    """The test seam: this one loopback port counts as a public server, nothing else does."""
    def allowed(ip, to_port: int) -> bool:
        return (to_port == port and ip.is_loopback) or public_address(ip)
    return allowed


@pytest.mark.parametrize("template, code", REDIRECTS, ids=_ids(REDIRECTS))
async def test_redirect_is_refused_before_any_connection(traps, redirector, template, code):
    redirector.locations.append(_fill(template, traps).encode())
    url = f"http://127.0.0.1:{redirector.port}/0"
    assert await _outcome(_fetcher(allowed=_only_port(redirector.port)), url) == code
    assert len(redirector.accepted) == 1  # the first hop was allowed and answered
    assert _connections(traps) == []


# The control: spellings the HTTP client itself turns into a loopback address reach the
# listeners when private URLs are allowed, so the refusals above are the guard's doing.
REACHABLE = [
    "http://127.0.0.1:{p}/a.jpg",
    "http://127\u30020\u30020\u30021:{p}/a.jpg",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/a.jpg",
    "http://\u2460\u2461\u2466.0.0.1:{p}/a.jpg",
    "http://localhost:{p}/a.jpg",
    "http://\u2113ocalhost:{p}/a.jpg",
    "http://0x7f.1:{p}/a.jpg",
    "http://public.example.com@127.0.0.1:{p}/a.jpg",
    "http://[::ffff:127.0.0.1]:{p}/a.jpg",
    "http://0.0.0.0:{p}/a.jpg",
    "http://[::1]:{p6}/a.jpg",
]


@pytest.mark.parametrize("template", REACHABLE, ids=_ids([(t, "") for t in REACHABLE]))
async def test_private_urls_allowed_do_reach_the_listener(traps, template):
    assert await _outcome(_fetcher(allow_private=True), _fill(template, traps)) == "fetched"
    assert len(_connections(traps)) == 1


async def test_redirect_with_raw_utf8_reaches_the_listener_when_allowed(traps, redirector):
    redirector.locations.append(_fill("http://127\u30020\u30020\u30021:{p}/a.jpg",
                                      traps).encode())
    url = f"http://127.0.0.1:{redirector.port}/0"
    assert await _outcome(_fetcher(allow_private=True), url) == "fetched"
    assert len(_connections(traps)) == 1


@pytest.mark.parametrize("template", REACHABLE, ids=_ids([(t, "") for t in REACHABLE]))
async def test_connect_time_guard_alone_refuses(traps, template):
    """No URL check in front: a plain aiohttp session whose connector has the guard's socket
    factory sees each address after aiohttp's own parsing and DNS, and opens no socket."""
    connector = aiohttp.TCPConnector(
        resolver=aiohttp.ThreadedResolver(),
        socket_factory=guarded_socket_factory(lambda ip, port: public_address(ip)),
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as raised:
            await session.get(_fill(template, traps))
    assert isinstance(raised.value.os_error, AddressRefused)
    assert _connections(traps) == []


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(traps):
    """A plain DNS name (this machine's own name, when it resolves to loopback): nothing in the
    URL says "inside", only the resolved address does, and the connect-time guard refuses it."""
    name = socket.gethostname()
    try:
        answers = {info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)}
    except OSError:
        answers = set()
    if not answers or not all(ipaddress.ip_address(a).is_loopback for a in answers):
        pytest.skip("this machine's name does not resolve to loopback only")
    url = f"http://{name}:{traps[0].port}/a.jpg"
    assert await _outcome(_fetcher(), url) == PRIVATE
    # The name does lead there: allowed, the fetch reaches the listener.
    assert await _outcome(_fetcher(allow_private=True), url) == "fetched"
    assert len(_connections(traps)) == 1  # from the allowed fetch only


@pytest.mark.parametrize("sockaddr", [
    ("127.0.0.1", 80), ("2130706433", 80), ("127.1", 80), ("0x7f.1", 80), ("localhost", 80),
    ("", 80), ("<broadcast>", 80), ("10.0.0.1", 80),
])
def test_socket_factory_refuses_what_is_not_a_plain_public_address(sockaddr):
    factory = guarded_socket_factory(lambda ip, port: public_address(ip))
    with pytest.raises(AddressRefused):
        factory((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))


def test_socket_factory_judges_the_zone_of_an_ipv6_address():
    factory = guarded_socket_factory(lambda ip, port: public_address(ip))
    with pytest.raises(AddressRefused):
        factory((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 ("2606:2800:220:1::1", 80, 0, 1)))
    sock = factory((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                    ("2606:2800:220:1::1", 80, 0, 0)))
    sock.close()


# --- through the import endpoint ------------------------------------------------------------

IMPORTED = [
    ("http://127\u30020\u30020\u30021:{p}/a.jpg", PRIVATE),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{p}/b.jpg", PRIVATE),
    ("http://2130706433:{p}/c.jpg", PRIVATE),
    ("http://0x7f.1:{p}/d.jpg", PRIVATE),
    ("http://localhost:{p}/e.jpg", PRIVATE),
    ("http://[::ffff:7f00:1]:{p}/f.jpg", PRIVATE),
    ("http://[2002:7f00:1::]:{p}/g.jpg", PRIVATE),
    ("http://%31%32%37.0.0.1:{p}/h.jpg", INVALID),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE),
]


def _manifest(urls: list[str]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    body = "code,url\n" + "".join(f"SKU-{i},{url}\n" for i, url in enumerate(urls, 1))
    data.add_field("manifest", body.encode(), filename="m.csv", content_type="text/csv")
    return data


async def test_import_refuses_every_spelling_without_a_connection(client, login_as, traps,
                                                                  conn):
    headers = await login_as("importer")
    urls = [_fill(template, traps) for template, _ in IMPORTED]
    response = await client.post("/api/v1/imports", data=_manifest(urls), headers=headers)
    body = await response.json()
    assert response.status == 201, body
    assert [(line["outcome"], line["status"], line["code"]) for line in body["items"]] == [
        ("rejected", 422, code) for _, code in IMPORTED]
    assert _connections(traps) == []
    assert await conn.fetchval("SELECT count(*) FROM images") == 0


async def test_import_with_private_urls_allowed_reaches_the_listener(aiohttp_client, settings,
                                                                     traps):
    from ecogram.app import create_app
    from tests.views.test_api_imports import _login

    client = await aiohttp_client(create_app(settings.replace(import_allow_private_urls=True)))
    headers = await _login(client)
    url = _fill("http://127\u30020\u30020\u30021:{p}/a.jpg", traps)
    response = await client.post("/api/v1/imports", data=_manifest([url]), headers=headers)
    body = await response.json()
    assert response.status == 201, body
    assert [line["outcome"] for line in body["items"]] == ["accepted"]
    assert len(_connections(traps)) == 1


async def test_import_survives_a_location_that_is_not_utf8(aiohttp_client, settings, traps,
                                                            redirector):
    """A redirect's raw bytes are not UTF-8: refused as an invalid URL, and the report (stored
    as JSON in PostgreSQL) still records it."""
    from ecogram.app import create_app
    from tests.views.test_api_imports import _login

    redirector.locations.append(b"http://127\xff.0.0.1:%d/a.jpg" % traps[0].port)
    client = await aiohttp_client(create_app(settings.replace(import_allow_private_urls=True)))
    headers = await _login(client)
    url = f"http://127.0.0.1:{redirector.port}/0"
    response = await client.post("/api/v1/imports", data=_manifest([url]), headers=headers)
    body = await response.json()
    assert response.status == 201, body
    assert [(line["outcome"], line["code"]) for line in body["items"]] == [
        ("rejected", INVALID)]
    assert _connections(traps) == []
