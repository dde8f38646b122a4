"""/img: the right pixels (size, orientation, colour, alpha, format) and the right headers."""

from __future__ import annotations

import pytest
import pyvips

from ecogram import keys
from ecogram.imaging.options import parse_options
from ecogram.imaging.pipeline import plan
from tests.conftest import assert_error
from tests.views.cdn_support import (
    CHROMIUM_ACCEPT,
    OLD_BROWSER_ACCEPT,
    SAFARI_ACCEPT,
    decode,
    fixture_bytes,
    import_photo,
    oriented_jpeg,
    publish,
    review,
)

PHOTO = "valid/xmp_test.jpg"  # 2000 x 1072
PHOTO_SIZE = (2000, 1072)


@pytest.fixture
def settings(settings):
    # Any size (dimension math up to and past the original), small fixtures accepted, and no
    # background presets competing with what the tests count.
    return settings.replace(min_side=10, allowed_sizes=None, eager_widths=(), channels=())


def served_count(client, tier: str) -> float:
    return client.app[keys.metrics].sample("ecogram_img_served_total", tier=tier)


def render_count(client) -> float:
    return sum(
        sample.value
        for metric in client.app[keys.metrics].renders.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


# --- dimensions -----------------------------------------------------------------------------

DIMENSION_CASES = [
    "w=400", "h=300", "w=400&h=400", "w=400&h=400&fit=cover", "w=400&h=400&fit=contain",
    "w=400&h=400&fit=fill", "w=400&h=100&fit=cover&g=north", "w=300&dpr=2",
    "w=200&h=200&fit=cover&dpr=1.5", "w=4000", "w=4000&h=4000&fit=cover",
    "w=3000&h=500&fit=contain", "w=2400&h=1200&fit=fill", "w=1000&h=1000&fit=inside&dpr=3",
    "w=500&h=500&fit=cover&g=attention", "w=1999", "",
]


@pytest.mark.parametrize("query", DIMENSION_CASES)
async def test_dimensions_follow_the_plan_for_every_fit_and_dpr(client, login_as, query):
    await publish(client, login_as, fixture_bytes(PHOTO), "DIM-1")
    response = await client.get(f"/img/DIM-1?{query}&fmt=webp")
    assert response.status == 200, await response.text()
    image = decode(await response.read())
    opts = parse_options(dict(part.split("=") for part in query.split("&") if part))
    expected = plan(opts, *PHOTO_SIZE).out
    assert (image.width, image.height) == expected
    # Never enlarged unless asked: only contain (canvas) and fill (stretch) exceed the source.
    if opts.fit not in ("contain", "fill") or not (opts.width and opts.height):
        assert image.width <= PHOTO_SIZE[0] and image.height <= PHOTO_SIZE[1]


# --- orientation, colour, alpha -------------------------------------------------------------

async def test_exif_orientation_is_applied(client, login_as):
    # Stored 240 x 120 with orientation 6 (rotate 90° clockwise to display): shown 120 x 240.
    await publish(client, login_as, oriented_jpeg(240, 120, 6), "ORI-1")
    response = await client.get("/img/ORI-1?fmt=png")
    image = decode(await response.read())
    assert (image.width, image.height) == (120, 240)
    assert not image.get_typeof("orientation") or image.get("orientation") == 1
    # The red block stored top-left is top-right once upright.
    top_right = image.crop(image.width - 20, 5, 15, 15).avg()
    top_left = image.crop(5, 5, 15, 15).avg()
    assert top_right < 200 and top_left > 240  # red (low mean over RGB) vs white
    assert image.extract_band(0).crop(image.width - 20, 5, 15, 15).min() > 200  # it is red

    # The Pillow sample: same pixels as pyvips' own upright rendering.
    await publish(client, login_as, fixture_bytes("valid/hopper_orientation_6.jpg"), "ORI-2")
    served = decode(await (await client.get("/img/ORI-2?fmt=png")).read())
    upright = pyvips.Image.new_from_buffer(
        fixture_bytes("valid/hopper_orientation_6.jpg"), "").autorot()
    assert (served.width, served.height) == (upright.width, upright.height)
    assert (served - upright).abs().avg() < 6


async def test_cmyk_is_served_as_srgb_with_the_right_colour(client, login_as):
    source = fixture_bytes("valid/pil_sample_cmyk.jpg")
    await publish(client, login_as, source, "CMYK-1")
    response = await client.get("/img/CMYK-1?fmt=jpeg")
    assert response.headers["Content-Type"] == "image/jpeg"
    image = decode(await response.read())
    assert image.bands == 3 and image.interpretation == "srgb"
    reference = pyvips.Image.new_from_buffer(source, "").colourspace("srgb")
    for band in range(3):
        assert abs(image.extract_band(band).avg() - reference.extract_band(band).avg()) < 6


@pytest.mark.parametrize("fixture", ["valid/pil123rgba.png", "valid/transparency.avif"])
@pytest.mark.parametrize("fmt", ["webp", "avif", "png"])
async def test_alpha_is_kept_where_the_format_has_it(client, login_as, fixture, fmt):
    await publish(client, login_as, fixture_bytes(fixture), "ALPHA-1",
                  filename=fixture.rsplit("/", 1)[-1])
    response = await client.get(f"/img/ALPHA-1?fmt={fmt}")
    assert response.headers["Content-Type"] == f"image/{fmt}"
    image = decode(await response.read())
    assert image.hasalpha()
    assert image.extract_band(image.bands - 1).min() < 128  # really transparent somewhere


async def test_alpha_is_flattened_on_bg_for_jpeg(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/pil123rgba.png"), "ALPHA-2",
                  filename="a.png")
    response = await client.get("/img/ALPHA-2?fmt=jpeg&bg=ff0000")
    image = decode(await response.read())
    assert image.bands == 3 and not image.hasalpha()
    source = pyvips.Image.new_from_buffer(fixture_bytes("valid/pil123rgba.png"), "")
    alpha = source.extract_band(3)
    # Where the source is fully transparent, the JPEG is the background colour.
    mask = (alpha == 0).ifthenelse(1, 0)
    assert mask.max() == 1
    red = (mask * image.extract_band(0)).avg() / mask.avg()
    green = (mask * image.extract_band(1)).avg() / mask.avg()
    assert red > 230 and green < 30
    # Without a bg, white: the default.
    white = decode(await (await client.get("/img/ALPHA-2?fmt=jpeg")).read())
    assert (mask * white.extract_band(1)).avg() / mask.avg() > 230


# --- negotiation and headers ----------------------------------------------------------------

@pytest.mark.parametrize(("accept", "opaque", "alpha"), [
    (CHROMIUM_ACCEPT, "image/avif", "image/avif"),
    (SAFARI_ACCEPT, "image/avif", "image/avif"),
    ("image/webp,*/*", "image/webp", "image/webp"),
    (OLD_BROWSER_ACCEPT, "image/jpeg", "image/png"),
    (None, "image/jpeg", "image/png"),
    ("image/avif;q=0,image/webp", "image/webp", "image/webp"),
])
async def test_accept_matrix(client, login_as, accept, opaque, alpha):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "ACC-1")
    await publish(client, login_as, fixture_bytes("valid/pil123rgba.png"), "ACC-2",
                  filename="a.png")
    headers = {"Accept": accept} if accept is not None else {}
    if accept is None:
        headers["Accept"] = ""  # the test client would send */* otherwise
    for code, expected in (("ACC-1", opaque), ("ACC-2", alpha)):
        response = await client.get(f"/img/{code}?w=64", headers=headers)
        assert response.status == 200
        assert response.headers["Content-Type"] == expected
        # Accept picked the format; no dpr, no q: the DPR hint and Save-Data could change it.
        lossy = "" if expected == "image/png" else ", Save-Data"
        assert response.headers["Vary"] == f"Accept, Sec-CH-DPR{lossy}"
        body = await response.read()
        assert decode(body).width == 64
    explicit = await client.get("/img/ACC-1?w=64&fmt=webp", headers={"Accept": CHROMIUM_ACCEPT})
    assert explicit.headers["Content-Type"] == "image/webp"
    assert "Accept" not in explicit.headers["Vary"]
    pinned = await client.get("/img/ACC-1?w=64&dpr=1&q=80&fmt=webp")
    assert "Vary" not in pinned.headers  # nothing left to the request's headers


async def test_caching_headers_etag_304_and_head(client, login_as, settings):
    record = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "HDR-1")
    url = "/img/HDR-1?w=100&fmt=webp"
    first = await client.get(url)
    body = await first.read()
    assert first.status == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == f"public, max-age={settings.cache_max_age}"
    assert first.headers["Content-Length"] == str(len(body))
    assert first.headers["Last-Modified"].endswith("GMT")

    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["ETag"] == etag
    for header in (f'W/{etag}', f'"nope", {etag}', "*"):
        assert (await client.get(url, headers={"If-None-Match": header})).status == 304
    changed = await client.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status == 200

    # Equivalent spellings share the variant and its ETag; another size does not.
    same = await client.get("/img/HDR-1/1?fmt=webp&w=100")
    assert same.headers["ETag"] == etag
    other = await client.get("/img/HDR-1?w=101&fmt=webp")
    assert other.headers["ETag"] != etag

    head = await client.head(url)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["ETag"] == etag
    assert await head.read() == b""

    versioned = await client.get(f"{url}&v={record['version']}")
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert await versioned.read() == body
    # An outdated v still serves the current picture, but not immutably (pages cached with an
    # old URL keep working, and a CDN refreshes it after ECOGRAM_CACHE_MAX_AGE).
    outdated = await client.get(f"{url}&v={record['version'] + 1000}")
    assert outdated.status == 200
    assert outdated.headers["Cache-Control"] == f"public, max-age={settings.cache_max_age}"


async def test_the_second_request_comes_from_memory(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "MEM-1")
    first = await client.get("/img/MEM-1?w=100&fmt=webp")
    assert first.status == 200
    renders = render_count(client)
    before = served_count(client, "memory")
    second = await client.get("/img/MEM-1?w=100&fmt=webp")
    assert await second.read() == await first.read()
    assert served_count(client, "memory") == before + 1
    assert render_count(client) == renders


# --- what does not exist, and bad requests --------------------------------------------------

async def test_404_for_unknown_pending_rejected_and_deleted(client, login_as):
    approved = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "LIVE-1")
    pending = await import_photo(client, login_as, fixture_bytes("valid/hopper.png"), "PEND-1",
                                 filename="p.png")
    rejected = await import_photo(client, login_as, fixture_bytes("valid/hopper.webp"),
                                  "REJ-1", filename="r.webp")
    await review(client, login_as, rejected["id"], "reject")
    assert (await client.get("/img/LIVE-1")).status == 200
    for path in ("/img/NOPE", "/img/PEND-1", "/img/PEND-1/1", "/img/REJ-1", "/img/LIVE-1/2",
                 "/img/LIVE-1/0", "/img/LIVE-1/99999999999999999999", "/img/" + "x" * 300,
                 "/img/NOPE/placeholder", "/img/PEND-1/1/placeholder"):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.headers["Cache-Control"] == "no-store"
        assert_error(await response.json(), "not_found")
    assert pending["status"] == "pending"
    admin = await login_as("admin")
    assert (await client.delete(f"/api/v1/images/{approved['id']}", headers=admin)).status in (
        200, 204)
    assert (await client.get("/img/LIVE-1")).status == 404
    assert (await client.get("/img/LIVE-1/placeholder")).status == 404


@pytest.mark.parametrize(("query", "parameter"), [
    ("w=abc", "w"), ("w=0", "w"), ("w=-5", "w"), ("h=99999", "h"), ("dpr=5", "dpr"),
    ("dpr=x", "dpr"), ("fit=stretch", "fit"), ("g=middle", "g"), ("fmt=gif", "fmt"),
    ("q=0", "q"), ("q=101", "q"), ("bg=red", "bg"), ("v=abc", "v"), ("zoom=2", "zoom"),
    ("w=100&w=200", "w"), ("w=12000&h=12000&fit=fill", "w"),
])
async def test_each_bad_parameter_is_a_400_naming_it(client, login_as, query, parameter):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "BAD-1")
    response = await client.get(f"/img/BAD-1?{query}")
    assert response.status == 400, query
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert_error(body)
    assert body["error"]["details"]["parameter"] == parameter
    assert (await client.get("/img/BAD-1?w=64")).status == 200  # and the server still answers


async def test_placeholder(client, login_as):
    record = await publish(client, login_as, fixture_bytes(PHOTO), "PH-1")
    for path in ("/img/PH-1/placeholder", "/img/PH-1/1/placeholder"):
        response = await client.get(path)
        assert response.status == 200
        body = await response.json()
        assert body == {"blurhash": record["blurhash"], "width": 2000, "height": 1072,
                        "color": record["color"]}
        assert response.headers["Cache-Control"].startswith("public")
        etag = response.headers["ETag"]
        assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    bad = await client.get("/img/PH-1/placeholder?w=3")
    assert bad.status == 400
    assert_error(await bad.json(), "invalid_parameter")


@pytest.mark.parametrize("path", ["/img/SKU%00", "/img/SKU%001/1", "/img/%00/placeholder",
                                  "/img/A%00B/2/placeholder", "/img/SKU%00?w=400"])
async def test_a_nul_in_the_code_is_a_404_not_a_database_error(client, path):
    # PostgreSQL text cannot hold a NUL: asked as is, it was a 500.
    response = await client.get(path)
    assert response.status == 404
    assert_error(await response.json(), "not_found")
