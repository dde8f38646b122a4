"""Manifest URLs: http(s) only, no private addresses (also after a redirect), size limited."""

from __future__ import annotations

import ipaddress

import aiohttp
import pytest
from aiohttp import web

from ecogram.catalog.sources.fetch import UrlFetcher, literal_address, public_address
from ecogram.errors import AppError
from tests.catalog.photos import make_photo
from tests.conftest import assert_error

PHOTO = make_photo(42)


@pytest.fixture
async def image_server(aiohttp_server):
    """A real HTTP server on 127.0.0.1 serving a photo, redirects and a big body."""
    async def photo(request):
        # The header lies: content is judged by its bytes.
        return web.Response(body=PHOTO, content_type="text/plain")

    async def to_private(request):
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def to_photo(request):
        raise web.HTTPFound("/photo.jpg")

    async def loop(request):
        raise web.HTTPFound("/loop")

    async def big(request):
        return web.Response(body=b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024))

    app = web.Application()
    app.router.add_get("/photo.jpg", photo)
    app.router.add_get("/to-private", to_private)
    app.router.add_get("/to-photo", to_photo)
    app.router.add_get("/loop", loop)
    app.router.add_get("/big", big)
    return await aiohttp_server(app, host="127.0.0.1")


def manifest(*urls: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    body = "code,url\n" + "".join(f"SKU-{i},{url}\n" for i, url in enumerate(urls, 1))
    data.add_field("manifest", body.encode(), filename="m.csv", content_type="text/csv")
    return data


async def test_private_address_refused_by_default(client, login_as, image_server, conn):
    headers = await login_as("importer")
    url = str(image_server.make_url("/photo.jpg"))
    by_name = url.replace("127.0.0.1", "localhost")  # goes through the resolver
    response = await client.post("/api/v1/imports", data=manifest(url, by_name),
                                 headers=headers)
    assert response.status == 201
    body = await response.json()
    assert [(line["outcome"], line["code"]) for line in body["items"]] == [
        ("rejected", "private_address"), ("rejected", "private_address")]
    assert await conn.fetchval("SELECT count(*) FROM images") == 0


async def test_allowed_private_urls_import(aiohttp_client, settings, image_server, conn):
    from ecogram.app import create_app
    from tests.views.test_api_imports import _login

    client = await aiohttp_client(create_app(settings.replace(import_allow_private_urls=True)))
    headers = await _login(client)
    response = await client.post(
        "/api/v1/imports",
        data=manifest(str(image_server.make_url("/photo.jpg")),
                      str(image_server.make_url("/to-photo"))),
        headers=headers,
    )
    body = await response.json()
    assert response.status == 201, body
    # The redirect leads to the same photo, here for another code: accepted, with a warning.
    assert [line["outcome"] for line in body["items"]] == ["accepted", "accepted"]
    warnings = body["items"][1]["record"]["qc"]["warnings"]
    assert "same_image_elsewhere" in {w["code"] for w in warnings}
    record = body["items"][0]["record"]
    assert (record["code"], record["format"], record["file_size"]) == ("SKU-1", "jpeg",
                                                                        len(PHOTO))
    assert record["filename"] == "photo.jpg"


def _loopback_only(ip, port: int) -> bool:
    """Treat 127.0.0.1 as if it were a public server; everything else as by default."""
    return ip == ipaddress.ip_address("127.0.0.1") or public_address(ip)


async def test_redirect_to_private_address_is_refused(image_server):
    fetcher = UrlFetcher(max_bytes=1024 * 1024, timeout=5, allowed=_loopback_only)
    try:
        # The first hop is allowed and answers...
        assert await fetcher.fetch(str(image_server.make_url("/photo.jpg"))) == PHOTO
        # ...but its redirect to the link-local metadata address is checked again and refused.
        with pytest.raises(AppError) as raised:
            await fetcher.fetch(str(image_server.make_url("/to-private")))
        assert raised.value.code == "private_address"
        with pytest.raises(AppError) as raised:
            await fetcher.fetch(str(image_server.make_url("/loop")))
        assert raised.value.code == "too_many_redirects"
        with pytest.raises(AppError) as raised:
            await fetcher.fetch(str(image_server.make_url("/big")))
        assert (raised.value.status, raised.value.code) == (413, "file_too_large")
    finally:
        await fetcher.close()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg",
                                 "gopher://127.0.0.1/", "javascript:alert(1)", "//no-scheme"])
async def test_non_http_schemes_are_refused(client, login_as, url):
    headers = await login_as("importer")
    response = await client.post("/api/v1/imports", data=manifest(url), headers=headers)
    assert response.status == 201
    (line,) = (await response.json())["items"]
    assert (line["outcome"], line["code"]) == ("rejected", "unsupported_url")


async def test_single_url_manifest_refusal_keeps_the_server_up(client, login_as):
    headers = await login_as("importer")
    response = await client.post("/api/v1/imports", data=manifest("http://10.0.0.1/x.jpg"),
                                 headers=headers)
    body = await response.json()
    assert body["items"][0]["code"] == "private_address"
    assert body["items"][0]["status"] == 422
    bad = await client.get("/api/v1/imports/abc", headers=headers)
    assert bad.status == 404
    assert_error(await bad.json())
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("::1", False), ("fe80::1", False),
    ("fc00::1", False), ("::ffff:127.0.0.1", False), ("100.64.0.1", False), ("224.0.0.1", False),
    ("93.184.216.34", True), ("2606:2800:220:1::1", True),
    # IPv6 carrying IPv4: judged by the IPv4 address carried.
    ("::ffff:8.8.8.8", True), ("64:ff9b::808:808", True), ("64:ff9b::7f00:1", False),
    ("64:ff9b::a9fe:a9fe", False), ("2002:808:808::", True), ("2002:7f00:1::", False),
    ("2002:a00:1::", False),
    # Refused whatever they carry: IPv4-compatible, local-use NAT64, zones, Teredo.
    ("::7f00:1", False), ("::808:808", False), ("64:ff9b:1::808:808", False),
    ("fe80::1%eth0", False), ("2606:2800:220:1::1%1", False), ("2001::1", False),
    ("255.255.255.255", False), ("240.0.0.1", False), ("ff0e::1", False), ("::", False),
])
def test_address_policy(address, public):
    assert public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("host, address", [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0X7F000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("0", "0.0.0.0"), ("::1", "::1"), ("::ffff:7f00:1", "::ffff:7f00:1"),
    ("localhost", "127.0.0.1"), ("LOCALHOST.", "127.0.0.1"), ("a.b.localhost", "127.0.0.1"),
    ("example.com", None), ("cafe.bad", None), ("0x7g.1", None), ("notlocalhost", None),
])
def test_literal_address_reads_every_spelling(host, address):
    expected = ipaddress.ip_address(address) if address is not None else None
    assert literal_address(host) == expected
