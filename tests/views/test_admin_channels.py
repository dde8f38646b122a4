"""The sales channels board (/admin/channels) and the photo page's Channels section over HTTP:
access, what each cell says and why, the filters and pages, the per-channel counts, both
languages, and the page security rules. Photos go in through the real import API and are
measured by the real geometry hooks."""

from __future__ import annotations

import html as htmllib
import re

import pytest

from ecogram import keys
from tests.catalog.test_channels import CHANNELS_FILE, product_photo
from tests.conftest import PASSWORD
from tests.views.conftest import make_image  # noqa: F401  (a fixture)


@pytest.fixture
def settings(settings, tmp_path):
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS_FILE, encoding="utf-8")
    return settings.replace(channels_file=path, channels=("testshop", "bigfiles"))


@pytest.fixture
def sign_in(client, login_as):
    """``await sign_in(role)``: a cookie session of a user of that role, as a person has."""

    async def go(role: str = "viewer") -> None:
        await login_as(role)
        email = "admin@example.com" if role == "admin" else f"{role}@example.com"
        client.session.cookie_jar.clear()
        response = await client.post("/login", data={"email": email, "password": PASSWORD},
                                     allow_redirects=False)
        assert response.status == 303, await response.text()

    return go


@pytest.fixture
def add(make_image, client):  # noqa: F811
    seeds = iter(range(1, 10_000))

    async def go(code: str, photo: bytes | None = None, *, status: str = "approved") -> dict:
        record = await make_image(code, status=status, product=f"Product {code}",
                                  photo=photo or product_photo(next(seeds)),
                                  filename=f"{code}.jpg")
        await client.app[keys.geometry].drain()
        return record

    return go


@pytest.fixture
async def shop(add):
    """A-OK ready for Test Shop, B-SMALL too small for it, C-PENDING not approved yet."""
    return {
        "ok": await add("A-OK", product_photo(1)),
        "small": await add("B-SMALL", product_photo(2, 300, 300)),
        "wide": await add("D-WIDE", product_photo(4, 600, 450)),
        "pending": await add("C-PENDING", product_photo(3), status="pending"),
    }


def rows(html: str) -> dict[str, str]:
    """The board's rows by product code: each row's HTML."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        code = re.search(r'class="board-code">([^<]+)<', row).group(1)
        found[htmllib.unescape(code)] = row
    return found


def cells(row: str) -> dict[str, str]:
    return {htmllib.unescape(label): cell
            for label, cell in re.findall(r'<td data-label="([^"]+)">(.*?)</td>', row, re.S)}


def text(fragment: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


async def test_anonymous_goes_to_login_and_every_role_sees_the_board(client, login_as, shop):
    response = await client.get("/admin/channels", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")
    for role in ("viewer", "importer", "reviewer", "admin"):
        response = await client.get("/admin/channels", headers=await login_as(role))
        html = await response.text()
        assert response.status == 200, (role, html[:300])
        assert 'href="/admin/channels" aria-current="page"' in html  # the menu names it


async def test_each_cell_says_ready_or_not_and_why(client, sign_in, shop):
    await sign_in("viewer")
    response = await client.get("/admin/channels")
    html = await response.text()
    assert response.status == 200
    found = rows(html)
    # Approved photos count by default: a product with none is listed, not ready.
    assert list(found) == ["A-OK", "B-SMALL", "C-PENDING", "D-WIDE"]
    assert "4 products" in text(html)
    pending = cells(found["C-PENDING"])["Test Shop"]
    assert "Not ready for Test Shop" in text(pending)
    assert "The product has 0 photos that count here; Test Shop needs at least 1." \
        in text(pending)
    headers = re.findall(r'<th scope="col">([^<]+)</th>', html)
    assert headers == ["Product", "Test Shop", "Big Files"]

    ok = cells(found["A-OK"])["Test Shop"]
    assert "✔" in ok and "Ready for Test Shop" in text(ok) and "Not ready" not in ok
    small = cells(found["B-SMALL"])["Test Shop"]
    assert "✖" in small and "Not ready for Test Shop" in text(small)
    assert "1 to fix" in text(small)
    assert "The photo is 300 × 300 px; Test Shop needs at least 400 px on the long side." \
        in text(small)
    # A reason names its photo and links to the photo page.
    assert f'href="/admin/images/{shop["small"]["id"]}">Photo 1</a>' in small
    # Fixed by the rendition: still ready, the reason marked as fixed automatically.
    wide = cells(found["D-WIDE"])["Test Shop"]
    assert "Ready for Test Shop" in text(wide) and "Not ready" not in text(wide)
    assert "fixed automatically" in wide and "not square" in text(wide)
    # Big Files wants files over 1 MB: no small photo is ready there.
    for code in found:
        assert "Not ready for Big Files" in text(cells(found[code])["Big Files"])
    # The cell and the product lead to the product's photos in the library.
    assert 'href="/admin/library?code=A-OK&amp;status=approved"' in ok
    # The main photo's thumbnail comes from the staff preview, keyed by its version.
    assert (f'src="/admin/images/{shop["ok"]["id"]}/preview?w=160&amp;'
            f'v={shop["ok"]["version"]}"') in found["A-OK"]


async def test_summary_counts_ready_products_per_channel(client, sign_in, shop):
    await sign_in("viewer")
    html = await (await client.get("/admin/channels")).text()
    stats = {text(name): text(num) for name, num in re.findall(
        r'<span class="stat-label">([^<]+)</span>\s*<span class="stat-num">([^<]+)</span>', html)}
    assert stats == {"Test Shop": "2 / 4", "Big Files": "0 / 4"}
    assert "Show the 2 not ready" in html and "Show the 4 not ready" in html
    # The counts cover every matching product, not only the page's.
    html = await (await client.get("/admin/channels?per_page=1")).text()
    assert list(rows(html)) == ["A-OK"]
    assert "2 / 4" in html and "Page 1 of 4" in html
    html = await (await client.get("/admin/channels?per_page=1&page=2")).text()
    assert list(rows(html)) == ["B-SMALL"]


async def test_filters(client, sign_in, shop):
    await sign_in("viewer")

    async def codes(query: str) -> list[str]:
        response = await client.get(f"/admin/channels?{query}")
        assert response.status == 200, (query, (await response.text())[:500])
        return list(rows(await response.text()))

    assert await codes("code=B-SMALL,D-WIDE") == ["B-SMALL", "D-WIDE"]
    assert await codes("q=small") == ["B-SMALL"]
    assert await codes("q=product+d-w") == ["D-WIDE"]  # the product name too
    assert await codes("q=%25") == []  # LIKE characters are taken literally
    # Pending photos counted: C-PENDING's photo is judged (not measured until approved), and
    # the other products have none.
    html = await (await client.get("/admin/channels?status=pending&channel=testshop")).text()
    judged = {code: text(cells(row)["Test Shop"]) for code, row in rows(html).items()}
    assert "have not been measured yet" in judged["C-PENDING"]
    assert all("0 photos that count here" in judged[c] for c in ("A-OK", "B-SMALL", "D-WIDE"))
    assert await codes("status=all") == ["A-OK", "B-SMALL", "C-PENDING", "D-WIDE"]
    assert await codes("channel=testshop&ready=false") == ["B-SMALL", "C-PENDING"]
    assert await codes("channel=testshop&ready=true") == ["A-OK", "D-WIDE"]
    assert await codes("channel=bigfiles&ready=true") == []
    # One channel: its column alone.
    html = await (await client.get("/admin/channels?channel=testshop")).text()
    assert re.findall(r'<th scope="col">([^<]+)</th>', html) == ["Product", "Test Shop"]
    assert 'data-label="Big Files"' not in html


@pytest.mark.parametrize("query", ["ready=false", "channel=nope", "status=later", "ready=maybe",
                                   "page=0", "per_page=1000", "q=" + "x" * 300, "code=a%00b",
                                   "q=%00", "channel=%00"])
async def test_bad_filters_are_a_422_page(client, sign_in, shop, query):
    await sign_in("viewer")
    response = await client.get(f"/admin/channels?{query}")
    html = await response.text()
    assert response.status == 422, (query, html[:300])
    assert 'class="form-error"' in html and "<tbody>" not in html


async def test_ready_without_a_channel_says_to_choose_one(client, sign_in, shop):
    await sign_in("viewer")
    html = await (await client.get("/admin/channels?ready=false")).text()
    assert "Choose a channel to show only ready or not ready products." in html
    html = await (await client.get("/admin/channels?ready=false",
                                   headers={"Accept-Language": "pt-BR"})).text()
    assert "Choose a channel" not in html
    assert "Escolha um canal" in html


async def test_board_in_portuguese(client, sign_in, shop):
    await sign_in("viewer")
    response = await client.get("/admin/channels", headers={"Accept-Language": "pt-BR"})
    html = await response.text()
    assert response.headers["Content-Language"] == "pt-BR"
    assert "<h1>Canais de venda</h1>" in html
    assert '<a href="/admin/channels" aria-current="page">Canais</a>' in html
    found = rows(html)
    small = cells(found["B-SMALL"])["Test Shop"]
    assert "Não está pronto para Test Shop" in text(small)
    assert "A foto tem 300 × 300 px; Test Shop exige pelo menos 400 px no lado maior." \
        in text(small)
    assert "Pronto para Test Shop" in text(cells(found["A-OK"])["Test Shop"])
    assert "4 produtos" in text(html)
    for english in ("Ready", "Not ready", "fixed automatically", "to fix", "products ready",
                    "Filters", "Readiness", "one channel"):
        assert english not in text(html), english


async def test_board_and_photo_page_keep_the_page_security_rules(client, sign_in, shop):
    await sign_in("viewer")
    for path in ["/admin/channels", "/admin/channels?ready=maybe",
                 f"/admin/images/{shop['ok']['id']}", f"/admin/images/{shop['pending']['id']}"]:
        response = await client.get(path)
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "<style" not in html, path


def channel_items(html: str) -> dict[str, str]:
    section = html.split('id="channels-title"', 1)[1].split("</section>", 1)[0]
    return {text(name): item for item, name in re.findall(
        r'(<li class="channel-item.*?<h3>([^<]+)</h3>.*?</div>\s*</li>)', section, re.S)}


async def test_photo_page_shows_each_channel_and_its_rendition(client, sign_in, shop):
    await sign_in("viewer")
    ok, small = shop["ok"], shop["small"]
    html = await (await client.get(f"/admin/images/{ok['id']}")).text()
    items = channel_items(html)
    assert list(items) == ["Test Shop", "Big Files"]
    assert "channel-ready" in items["Test Shop"] and "✔" in items["Test Shop"]
    assert "channel-blocked" in items["Big Files"] and "✖" in items["Big Files"]
    assert "Big Files" in text(items["Big Files"]) and "less than the" in text(items["Big Files"])
    # An approved photo: the rendition's /img address (same origin), and it answers a JPEG.
    src = f"/img/A-OK/1/testshop.jpg?v={ok['version']}"
    assert f'src="{src}"' in items["Test Shop"].replace("&amp;", "&")
    response = await client.get(src)
    assert response.status == 200 and response.content_type == "image/jpeg"

    html = await (await client.get(f"/admin/images/{small['id']}")).text()
    items = channel_items(html)
    assert "channel-blocked" in items["Test Shop"]
    assert "needs at least 400 px" in text(items["Test Shop"])

    wide = await client.get(f"/admin/images/{shop['wide']['id']}")
    items = channel_items(await wide.text())
    assert "channel-fixed" in items["Test Shop"] and "fixed automatically" in items["Test Shop"]

    # A pending photo: the staff preview, which /img would refuse.
    pending = shop["pending"]
    html = await (await client.get(f"/admin/images/{pending['id']}")).text()
    items = channel_items(html)
    src = f"/admin/images/{pending['id']}/channel/testshop"
    assert f'src="{src}"' in items["Test Shop"]
    response = await client.get(src)
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert (await client.get("/img/C-PENDING/1/testshop.jpg")).status == 404


async def test_photo_page_channels_in_portuguese(client, sign_in, shop):
    await sign_in("viewer")
    html = await (await client.get(f"/admin/images/{shop['small']['id']}",
                                   headers={"Accept-Language": "pt-BR"})).text()
    items = channel_items(html)
    assert "exige pelo menos 400 px" in text(items["Test Shop"])
    assert "Não está pronto" in text(items["Test Shop"])
    assert ">Canais</h2>" in html
