"""A real Chromium loading a storefront page of <img> tags gets AVIF from /img."""

from __future__ import annotations

import pytest

from tests.conftest import IMAGES, PASSWORD

pytestmark = pytest.mark.browser

# The storefront page is served by the test (a route), on the server's own origin: Chromium's
# Private Network Access would block a public page's requests to 127.0.0.1.
SHOP_PAGE = "/__storefront-test.html"


def _publish(api, base: str, token: dict, path: str, code: str, mime: str) -> dict:
    upload = api.post(f"{base}/api/v1/images", headers=token, multipart={
        "file": {"name": path.rsplit("/", 1)[-1], "mimeType": mime,
                 "buffer": (IMAGES / path).read_bytes()},
        "code": code,
    })
    assert upload.status == 201, upload.text()
    record = upload.json()["items"][0]["record"]
    approved = api.post(f"{base}/api/v1/images/{record['id']}/approve", headers=token, data={})
    assert approved.status == 200, approved.text()
    return approved.json()


def test_chromium_gets_avif_for_every_img(live_server, browser):
    base = live_server.url
    context = browser.new_context()
    try:
        api = context.request
        registered = api.post(f"{base}/api/v1/auth/register", data={
            "email": "shop@example.com", "name": "Shop Admin", "password": PASSWORD})
        assert registered.status == 201, registered.text()
        login = api.post(f"{base}/api/v1/auth/login",
                         data={"email": "shop@example.com", "password": PASSWORD})
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        photo = _publish(api, base, token, "valid/xmp_test.jpg", "SHOP-1", "image/jpeg")
        _publish(api, base, token, "valid/hopper.jpg", "SHOP-1", "image/jpeg")
        _publish(api, base, token, "valid/pil123rgba.png", "SHOP-2", "image/png")

        sources = [
            f"{base}/img/SHOP-1?w=400",
            f"{base}/img/SHOP-1/1?w=800&v={photo['version']}",
            f"{base}/img/SHOP-1/2?w=100",
            f"{base}/img/SHOP-1?w=300&h=300&fit=cover&g=attention",
            f"{base}/img/SHOP-2?w=120",  # alpha: AVIF keeps it
        ]
        tags = "\n".join(f'<img id="i{n}" src="{src}" alt="">' for n, src in enumerate(sources))
        srcset = (f'<img id="srcset" src="{base}/img/SHOP-1?w=400" '
                  f'srcset="{base}/img/SHOP-1?w=400 400w, {base}/img/SHOP-1?w=800 800w" '
                  'sizes="400px" alt="">')
        html = f"<!doctype html><title>Shop</title>{tags}{srcset}"

        page = context.new_page()
        page.route(base + SHOP_PAGE,
                   lambda route: route.fulfill(body=html, content_type="text/html"))
        seen: dict[str, tuple[int, str | None]] = {}
        page.on("response", lambda r: "/img/" in r.url and seen.__setitem__(
            r.url, (r.status, r.headers.get("content-type"))))
        page.goto(base + SHOP_PAGE, wait_until="load")
        page.wait_for_function(
            "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000)

        assert len(seen) >= len(sources)
        for url, (status, content_type) in seen.items():
            assert status == 200, url
            assert content_type == "image/avif", (url, content_type)
        widths = page.evaluate("Array.from(document.images).map(i => [i.id, i.naturalWidth])")
        assert dict(widths)["i0"] == 400
        assert dict(widths)["i2"] == 100
        assert dict(widths)["i3"] == 300
    finally:
        context.close()
