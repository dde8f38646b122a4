"""/img and client hints (issue 15): Sec-CH-Width, Sec-CH-DPR and Save-Data change the answer
by the documented rules, never unlock a size, and ``Vary`` names exactly what the URL leaves to
them — on 200s, 304s and replays alike."""

from __future__ import annotations

import pytest

from ecogram import keys
from ecogram.catalog import signing
from ecogram.imaging.options import (
    Hints,
    hint_dpr,
    hint_width,
    save_data_quality,
    saves_data,
)
from ecogram.imaging.pipeline import DEFAULT_QUALITY
from tests.conftest import TEST_SECRET
from tests.views.cdn_support import CHROMIUM_ACCEPT, decode, fixture_bytes, publish

PHOTO = "valid/xmp_test.jpg"  # 2000 x 1072
SMALL = "valid/hopper.jpg"  # 128 x 128
ALLOWED = (100, 200, 300, 400, 600, 800, 1200)


@pytest.fixture
def settings(settings):
    return settings.replace(min_side=10, allowed_sizes=ALLOWED, eager_widths=(), channels=())


def vary_of(response) -> list[str]:
    raw = response.headers.get("Vary")
    return [name.strip() for name in raw.split(",")] if raw else []


async def get(client, url: str, **headers: str):
    response = await client.get(url, headers=headers)
    assert response.status == 200, await response.text()
    return response, await response.read()


# --- parsing a hint: lenient (a browser sent it), normalised (the cache stays small) ---------

def test_hint_values_are_parsed_leniently_and_normalised():
    assert hint_width(" 350 ") == 350
    for bad in ("", "abc", "-5", "0", "1e3", "35.5", "3,5", "9999999"):
        assert hint_width(bad) is None, bad
    assert hint_dpr("2") == 2.0 and hint_dpr("2.625") == 2.5 and hint_dpr("1.3") == 1.5
    assert hint_dpr("0.5") == 1.0 and hint_dpr("7") == 4.0  # clamped to 1–4
    for bad in ("", "x", "NaN", "2,0", "-2", "inf"):
        assert hint_dpr(bad) is None, bad
    assert saves_data("on") and saves_data(" On ")
    assert not saves_data("off") and not saves_data(None) and not saves_data("1")
    assert save_data_quality(80) == 65 and save_data_quality(25) == 20


# --- Sec-CH-Width ------------------------------------------------------------------------------

async def test_without_w_the_width_hint_is_rounded_up_to_an_allowed_size(client, login_as):
    await publish(client, login_as, fixture_bytes(PHOTO), "CHW-1")
    plain, plain_body = await get(client, "/img/CHW-1?fmt=webp")
    assert decode(plain_body).width == 2000  # no w, no hint: the original's size
    hinted, body = await get(client, "/img/CHW-1?fmt=webp", **{"Sec-CH-Width": "350"})
    assert decode(body).width == 400  # physical pixels, rounded UP to the next allowed size
    assert vary_of(hinted) == vary_of(plain) == ["Sec-CH-Width", "Save-Data"]
    # Same variant as asking w=400 at dpr 1: one cache entry, one ETag.
    explicit, _ = await get(client, "/img/CHW-1?fmt=webp&w=400")
    assert hinted.headers["ETag"] == explicit.headers["ETag"]
    # An exact allowed size stays; the hint already holds the DPR: an explicit dpr is not
    # applied on top of it.
    _, body = await get(client, "/img/CHW-1?fmt=webp&dpr=2", **{"Sec-CH-Width": "600"})
    assert decode(body).width == 600
    # Beyond the largest allowed size: the largest (a hint never unlocks a size).
    _, body = await get(client, "/img/CHW-1?fmt=webp", **{"Sec-CH-Width": "1900"})
    assert decode(body).width == 1200
    # With h: the box is the hint's width by h (in its device pixels).
    _, body = await get(client, "/img/CHW-1?fmt=webp&h=100&fit=fill",
                        **{"Sec-CH-Width": "150"})
    image = decode(body)
    assert (image.width, image.height) == (200, 100)


async def test_the_width_hint_never_enlarges_and_shares_one_variant(client, login_as):
    await publish(client, login_as, fixture_bytes(SMALL), "CHW-2")  # 128 wide
    answers = []
    for hint in ("150", "700", "5000"):
        response, body = await get(client, "/img/CHW-2?fmt=webp", **{"Sec-CH-Width": hint})
        assert decode(body).width == 128
        answers.append(response.headers["ETag"])
    assert len(set(answers)) == 1  # every hint past the original is the same, single variant
    _, body = await get(client, "/img/CHW-2?fmt=webp", **{"Sec-CH-Width": "90"})
    assert decode(body).width == 100


# --- Sec-CH-DPR --------------------------------------------------------------------------------

async def test_with_w_and_no_dpr_the_dpr_hint_applies_within_the_allowed_sizes(
    client, login_as
):
    await publish(client, login_as, fixture_bytes(PHOTO), "CHD-1")
    plain, body = await get(client, "/img/CHD-1?w=200&fmt=webp")
    assert decode(body).width == 200
    assert vary_of(plain) == ["Sec-CH-DPR", "Save-Data"]
    for hint, width in (("2", 400), ("3", 600), ("2.7", 400), ("1.2", 200), ("9", 800)):
        # 2.7 → 2.5 (step) → 500 is not allowed → 2 → 400; 9 → 4 (clamp) → 800.
        response, body = await get(client, "/img/CHD-1?w=200&fmt=webp", **{"Sec-CH-DPR": hint})
        assert decode(body).width == width, hint
        assert vary_of(response) == ["Sec-CH-DPR", "Save-Data"]
    # An explicit dpr wins, and then the hint is no part of the answer.
    response, body = await get(client, "/img/CHD-1?w=200&dpr=1&fmt=webp",
                               **{"Sec-CH-DPR": "2"})
    assert decode(body).width == 200 and vary_of(response) == ["Save-Data"]


async def test_a_hint_never_unlocks_a_size_a_signed_url_did_not_sign(client, login_as):
    await publish(client, login_as, fixture_bytes(PHOTO), "CHD-2")
    signed = signing.signed_path(TEST_SECRET, "/img/CHD-2", {"w": "333", "fmt": "webp"})
    _, body = await get(client, signed)
    assert decode(body).width == 333  # the signature allows 333
    _, body = await get(client, signed, **{"Sec-CH-DPR": "2"})
    assert decode(body).width == 333  # 666 is not allowed: the hint is not applied
    unsigned = await client.get("/img/CHD-2?w=333&fmt=webp", headers={"Sec-CH-DPR": "2"})
    assert unsigned.status == 400  # hints never make a refused URL acceptable


async def test_malformed_hints_are_ignored(client, login_as):
    await publish(client, login_as, fixture_bytes(PHOTO), "CHM-1")
    for url in ("/img/CHM-1?fmt=webp&w=200", "/img/CHM-1?fmt=webp"):
        plain, plain_body = await get(client, url)
        for headers in ({"Sec-CH-Width": "wide"}, {"Sec-CH-Width": "-4"},
                        {"Sec-CH-Width": "0"}, {"Sec-CH-DPR": "x"}, {"Sec-CH-DPR": "NaN"},
                        {"Save-Data": "please"}, {"Sec-CH-DPR": "2,0", "Save-Data": "off"}):
            response, body = await get(client, url, **headers)
            assert response.headers["ETag"] == plain.headers["ETag"], headers
            assert body == plain_body
            assert vary_of(response) == vary_of(plain)


# --- Save-Data ---------------------------------------------------------------------------------

async def test_save_data_lowers_the_quality_one_step_and_an_explicit_q_wins(client, login_as):
    await publish(client, login_as, fixture_bytes(PHOTO), "CHS-1")
    url = "/img/CHS-1?w=400&fmt=webp"
    plain, plain_body = await get(client, url)
    saving, body = await get(client, url, **{"Save-Data": "on"})
    assert len(body) < len(plain_body)
    lowered = save_data_quality(DEFAULT_QUALITY["webp"])
    # Exactly the variant of asking that quality: one step below the format's default.
    same, same_body = await get(client, f"{url}&q={lowered}")
    assert saving.headers["ETag"] == same.headers["ETag"] and body == same_body
    assert "Save-Data" in vary_of(saving) and "Save-Data" in vary_of(plain)
    # An explicit q wins, and then Save-Data is no part of the answer.
    explicit, explicit_body = await get(client, f"{url}&q=90")
    with_save, with_save_body = await get(client, f"{url}&q=90", **{"Save-Data": "on"})
    assert with_save.headers["ETag"] == explicit.headers["ETag"]
    assert with_save_body == explicit_body
    assert "Save-Data" not in vary_of(with_save)
    # PNG has no quality: Save-Data changes nothing there.
    png, png_body = await get(client, "/img/CHS-1?w=100&fmt=png")
    assert "Save-Data" not in vary_of(png)
    png_saving, png_saving_body = await get(client, "/img/CHS-1?w=100&fmt=png",
                                            **{"Save-Data": "on"})
    assert png_body == png_saving_body and "Save-Data" not in vary_of(png_saving)
    # Negotiated: Save-Data lowers the AVIF the browser gets.
    avif, avif_body = await get(client, "/img/CHS-1?w=400", Accept=CHROMIUM_ACCEPT)
    avif_saving, avif_saving_body = await get(client, "/img/CHS-1?w=400",
                                              Accept=CHROMIUM_ACCEPT, **{"Save-Data": "on"})
    assert avif.headers["Content-Type"] == avif_saving.headers["Content-Type"] == "image/avif"
    assert len(avif_saving_body) < len(avif_body)
    assert vary_of(avif_saving) == ["Accept", "Sec-CH-DPR", "Save-Data"]


# --- Vary: exactly what the URL leaves to the request's headers --------------------------------

VARY_CASES = [
    ("", ["Accept", "Sec-CH-Width", "Save-Data"]),
    ("w=400", ["Accept", "Sec-CH-DPR", "Save-Data"]),
    ("w=400&fmt=webp", ["Sec-CH-DPR", "Save-Data"]),
    ("w=200&dpr=2&fmt=webp", ["Save-Data"]),
    ("w=200&dpr=2&fmt=webp&q=50", []),
    ("w=400&q=50", ["Accept", "Sec-CH-DPR"]),
    ("fmt=jpeg&q=70", ["Sec-CH-Width"]),
    ("h=300&fmt=avif", ["Sec-CH-Width", "Save-Data"]),
    ("w=400&dpr=1&fmt=png", []),
    ("fmt=png", ["Sec-CH-Width"]),
]
HINT_SETS = [
    {},
    {"Sec-CH-Width": "350"},
    {"Sec-CH-DPR": "2"},
    {"Save-Data": "on"},
    {"Sec-CH-Width": "350", "Sec-CH-DPR": "2", "Save-Data": "on"},
]


@pytest.mark.parametrize(("query", "expected"), VARY_CASES)
async def test_vary_names_exactly_the_headers_that_can_change_the_answer(
    client, login_as, query, expected
):
    await publish(client, login_as, fixture_bytes(PHOTO), "VRY-1")
    for hints in HINT_SETS:
        headers = {"Accept": CHROMIUM_ACCEPT, **hints}
        response, _ = await get(client, f"/img/VRY-1?{query}", **headers)
        assert vary_of(response) == expected, hints
        # The 304 says the same, first served, then replayed.
        for _ in range(2):
            again = await client.get(f"/img/VRY-1?{query}", headers={
                **headers, "If-None-Match": response.headers["ETag"]})
            assert again.status == 304
            assert vary_of(again) == expected


async def test_every_header_in_vary_really_changes_the_answer(client, login_as):
    """The other half of exact: each name in Vary, sent, gives other bytes."""
    await publish(client, login_as, fixture_bytes(PHOTO), "VRY-2")
    sent = {"Accept": CHROMIUM_ACCEPT, "Sec-CH-Width": "350", "Sec-CH-DPR": "2",
            "Save-Data": "on"}
    for query in ("", "w=200", "w=200&fmt=webp", "fmt=jpeg"):
        base = await client.get(f"/img/VRY-2?{query}", headers={"Accept": ""})
        assert base.status == 200
        for name in vary_of(base) or []:
            changed = await client.get(f"/img/VRY-2?{query}",
                                       headers={"Accept": "", name: sent[name]})
            assert changed.headers["ETag"] != base.headers["ETag"], (query, name)


# --- the replay memo ---------------------------------------------------------------------------

async def test_the_replay_never_crosses_hinted_and_unhinted_answers(client, login_as):
    await publish(client, login_as, fixture_bytes(PHOTO), "RPH-1")
    delivery = client.app[keys.delivery]
    url = "/img/RPH-1?w=200&fmt=webp"
    hinted = {"Sec-CH-DPR": "2", "Save-Data": "on"}
    plain, plain_body = await get(client, url)
    saving, saving_body = await get(client, url, **hinted)
    assert decode(saving_body).width == 400 and decode(plain_body).width == 200
    served = client.app[keys.metrics].sample("ecogram_img_served_total", tier="memory")
    for _ in range(3):  # replayed from the memo, each answer its own
        response, body = await get(client, url)
        assert response.headers["ETag"] == plain.headers["ETag"] and body == plain_body
        response, body = await get(client, url, **hinted)
        assert response.headers["ETag"] == saving.headers["ETag"] and body == saving_body
    assert client.app[keys.metrics].sample(
        "ecogram_img_served_total", tier="memory") == served + 6
    assert {key[2] for key in delivery.recent} == {None, Hints(None, "2", "on")}
    # A 304 replay crosses neither.
    not_modified = await client.get(url, headers={**hinted,
                                                  "If-None-Match": plain.headers["ETag"]})
    assert not_modified.status == 200 and await not_modified.read() == saving_body


# --- pages ask for the hints -------------------------------------------------------------------

async def test_pages_ask_for_the_client_hints(client):
    response = await client.get("/login")
    assert response.status == 200
    assert response.headers["Accept-CH"] == "Sec-CH-DPR, Sec-CH-Width"


async def test_the_photo_page_shows_how_a_storefront_asks_for_the_hints(client, login_as):
    record = await publish(client, login_as, fixture_bytes(SMALL), "SNP-1")
    page = await client.get(f"/admin/images/{record['id']}", headers=await login_as("viewer"))
    assert page.status == 200
    assert page.headers["Accept-CH"] == "Sec-CH-DPR, Sec-CH-Width"
    html = await page.text()
    origin = "/".join(record["urls"]["src"].split("/")[:3])
    assert origin.startswith("http") and "/img" not in origin
    assert (f'&lt;meta http-equiv="Delegate-CH" content="sec-ch-dpr {origin}; '
            f'sec-ch-width {origin}"&gt;') in html
    assert "sizes=" in html  # the snippet's img has sizes: Sec-CH-Width is sent for it
