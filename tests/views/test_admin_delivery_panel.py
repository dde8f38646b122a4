"""The dashboard's delivery panel (issue 15): most-served and heaviest photos, the week's bytes
saved and the hit ratio by day, in English and in Portuguese."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.conftest import PASSWORD
from tests.views.test_admin_pages_i18n import PT, _english_on, _english_sentences, _text


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


async def _count(conn, image_id: int, day: dt.date, requests: int, sent: int, hits: int) -> None:
    await conn.execute(
        "INSERT INTO delivery_stats (image_id, day, requests, bytes_sent, bytes_saved, hits,"
        " renders, render_ms) VALUES ($1, $2, $3::bigint, $4::bigint,"
        " $3::bigint * 100000 - $4::bigint, $5::bigint, $3::bigint - $5::bigint, 50)",
        image_id, day, requests, sent, hits)


async def test_the_panel_shows_the_weeks_delivery_in_both_languages(client, sign_in, conn,
                                                                    make_image):
    busy = await make_image("SKU-BUSY", status="approved")
    heavy = await make_image("SKU-HEAVY", status="approved")
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    await _count(conn, busy["id"], today, 300, 300 * 20_000, 297)  # 20 kB per request
    await _count(conn, busy["id"], yesterday, 100, 100 * 20_000, 50)
    await _count(conn, heavy["id"], today, 10, 10 * 900_000, 9)  # 900 kB per request
    await _count(conn, heavy["id"], today - dt.timedelta(days=20), 999, 1, 999)  # not this week
    await sign_in("viewer")

    html = await (await client.get("/admin")).text()
    panel = html[html.index('id="delivery-title"'):html.index("</section>",
                                                              html.index('id="delivery-title"'))]
    text = _text(panel)
    assert "Delivery in the last 7 days" in text
    assert "410 images served" in text
    # Saved: 410 × 100 kB − (8 MB + 9 MB) = 41 MB − 17 MB = 24 MB
    assert "24 MB saved against the originals" in text
    assert "86.8% answered without a render" in text  # (297 + 50 + 9) / 410
    most, heaviest, days = re.findall(r"<tbody>(.*?)</tbody>", panel, re.S)
    assert re.findall(r"SKU-\w+", most) == ["SKU-BUSY", "SKU-HEAVY"]
    assert re.findall(r"SKU-\w+", heaviest) == ["SKU-HEAVY", "SKU-BUSY"]
    assert "900 kB" in heaviest and "20 kB" in heaviest
    assert f'/admin/images/{heavy["id"]}' in heaviest
    assert days.count("<tr>") == 2 and "50%" in days and "98.7%" in days  # 306/310 today

    portuguese = await (await client.get("/admin", headers=PT)).text()
    text = _text(portuguese)
    assert "Entrega nos últimos 7 dias" in text and "410 imagens servidas" in text
    assert "86,8% respondidas sem renderizar" in text
    assert "Fotos mais servidas" in text and "Taxa de acerto por dia" in text
    assert _english_on(portuguese, _english_sentences()) == []


async def test_the_panel_says_when_nothing_was_served(client, sign_in):
    await sign_in("viewer")
    assert "No photo has been served in the last 7 days." in await (await client.get(
        "/admin")).text()
    assert "Nenhuma foto foi servida nos últimos 7 dias." in await (await client.get(
        "/admin", headers=PT)).text()
