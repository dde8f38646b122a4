"""Calibrated quality through the service: found at approval, stored per version and format,
used by /img without `q`; an explicit `q` wins; a replaced photo is calibrated anew."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import pyvips

from ecogram import keys
from ecogram.imaging import quality
from ecogram.settings import Settings, SettingsError
from tests.views.cdn_support import CHROMIUM_ACCEPT, decode, publish, review
from tests.views.test_cdn import served_count

SIDE = 400


def flat_product() -> bytes:
    """A flat box with a label on pure white, as catalogue shots are (JPEG q95)."""
    white = pyvips.Image.black(SIDE, SIDE).new_from_image([255, 255, 255]).cast("uchar")
    box = pyvips.Image.black(SIDE // 2, SIDE // 2).new_from_image([120, 140, 170]).cast("uchar")
    label = pyvips.Image.black(SIDE // 4, SIDE // 8).new_from_image([230, 200, 60]).cast("uchar")
    image = white.insert(box.insert(label, SIDE // 8, SIDE // 6), SIDE // 4, SIDE // 4)
    return image.copy(interpretation="srgb").jpegsave_buffer(Q=95)


def noisy_photo(seed: int = 1, sigma: float = 28) -> bytes:
    """Gradients under heavy noise (lossless PNG, so the noise is all there)."""
    x = pyvips.Image.xyz(SIDE, SIDE)[0]
    base = (x / SIDE * 200 + 20).bandjoin([x / SIDE * 80 + 60, 255 - x / SIDE * 200])
    noise = pyvips.Image.gaussnoise(SIDE, SIDE, sigma=sigma, seed=seed).bandjoin(
        [pyvips.Image.gaussnoise(SIDE, SIDE, sigma=sigma, seed=seed + s) for s in (1, 2)]) - 128
    return (base + noise).cast("uchar").copy(interpretation="srgb").pngsave_buffer()


# Settings of the tests whose name has these words, over the module's.
OVERRIDES = {
    "without_calibration": {"quality_target": 0.0},
    "stored_after_a_render": {"quality_target": 0.0},
    "eager_renders": {"eager_widths": (400,), "eager_formats": ("webp",)},
    "delivered_bytes": {"quality_widths": (200, 400), "quality_bounds": {"webp": (30, 90)}},
}


@pytest.fixture
def settings(settings, request):
    # Calibration on (the suite turns it off); no presets: only the calibration runs at
    # approval — unless OVERRIDES say otherwise.
    chosen = {
        "min_side": 10, "allowed_sizes": None, "eager_widths": (), "channels": (),
        "quality_target": 75.0,
        "quality_bounds": {"webp": (30, 90), "avif": (25, 80), "jpeg": (30, 90)},
    }
    for words, overrides in OVERRIDES.items():
        if words in request.node.name:
            chosen.update(overrides)
    return settings.replace(**chosen)


async def stored_widths(conn, image_id: int) -> dict[str, dict[int, tuple[int, int, float]]]:
    """format → {output width → (version, q, score)}."""
    rows = await conn.fetch("SELECT format, width, version, q, score FROM image_quality "
                            "WHERE image_id = $1", image_id)
    found: dict[str, dict[int, tuple[int, int, float]]] = {}
    for row in rows:
        found.setdefault(row["format"], {})[row["width"]] = (
            row["version"], row["q"], row["score"])
    return found


async def stored(conn, image_id: int) -> dict[str, tuple[int, int, float]]:
    """format → (version, q, score) of a photo calibrated at one width: these photos are
    SIDE px wide, so the default widths 400 and 800 both come out at 400."""
    found = await stored_widths(conn, image_id)
    assert all(list(widths) == [SIDE] for widths in found.values()), found
    return {fmt: widths[SIDE] for fmt, widths in found.items()}


async def test_a_flat_product_shot_is_served_at_a_lower_q_than_a_noisy_photo(
    client, login_as, conn
):
    delivery = client.app[keys.delivery]
    flat = await publish(client, login_as, flat_product(), "FLAT")
    noisy = await publish(client, login_as, noisy_photo(), "NOISY", filename="noisy.png")
    await delivery.eager_idle()
    flat_q, noisy_q = await stored(conn, flat["id"]), await stored(conn, noisy["id"])
    assert set(flat_q) == set(noisy_q) == {"webp", "avif", "jpeg"}
    for fmt in ("webp", "avif", "jpeg"):
        assert flat_q[fmt][0] == flat["version"] and noisy_q[fmt][0] == noisy["version"]
        assert flat_q[fmt][1] < noisy_q[fmt][1], fmt
        assert flat_q[fmt][2] >= 75 or flat_q[fmt][1] == 30

    for code, found in (("FLAT", flat_q), ("NOISY", noisy_q)):
        for fmt, accept in (("avif", CHROMIUM_ACCEPT), ("jpeg", "image/*")):
            response = await client.get(f"/img/{code}?w=300", headers={"Accept": accept})
            assert response.status == 200
            assert response.content_type == f"image/{fmt}"
            q = found[fmt][1]
            assert response.headers["X-Ecogram-Quality"] == str(q)
            assert f".q{q}." in response.headers["ETag"]
            # the same bytes an explicit q of that value gets: one variant, one render
            same = await client.get(f"/img/{code}?w=300&q={q}", headers={"Accept": accept})
            assert same.headers["ETag"] == response.headers["ETag"]
            assert await same.read() == await response.read()
            assert decode(await response.read()).width == 300


async def test_an_explicit_q_wins_over_the_calibrated_one(client, login_as, conn):
    flat = await publish(client, login_as, flat_product(), "FLAT")
    await client.app[keys.delivery].eager_idle()
    calibrated = (await stored(conn, flat["id"]))["webp"][1]
    explicit = 95 if calibrated != 95 else 94
    plain = await client.get("/img/FLAT?w=300&fmt=webp")
    asked = await client.get(f"/img/FLAT?w=300&fmt=webp&q={explicit}")
    assert plain.headers["X-Ecogram-Quality"] == str(calibrated)
    assert asked.headers["X-Ecogram-Quality"] == str(explicit)
    assert asked.headers["ETag"] != plain.headers["ETag"]
    assert len(await asked.read()) > len(await plain.read())


async def test_a_replaced_photo_is_calibrated_anew(client, login_as, conn):
    delivery = client.app[keys.delivery]
    first = await publish(client, login_as, flat_product(), "SWAP")
    await delivery.eager_idle()
    before = await stored(conn, first["id"])
    assert before["webp"][0] == first["version"]
    before_response = await client.get("/img/SWAP?w=300&fmt=jpeg")
    assert before_response.headers["X-Ecogram-Quality"] == str(before["jpeg"][1])

    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", noisy_photo(seed=7), filename="new.png",
                   content_type="application/octet-stream")
    response = await client.put(f"/api/v1/images/{first['id']}/file", data=form,
                                headers=await login_as("importer"))
    assert response.status == 200, await response.text()
    replaced = await review(client, login_as, first["id"], "approve")
    assert replaced["version"] != first["version"]
    await delivery.eager_idle()
    after = await stored(conn, first["id"])
    # the old version's results are gone, the new one's are the noisy photo's (higher q)
    assert {version for version, _, _ in after.values()} == {replaced["version"]}
    assert after["jpeg"][1] > before["jpeg"][1]
    served = await client.get("/img/SWAP?w=300&fmt=jpeg")
    assert served.headers["X-Ecogram-Quality"] == str(after["jpeg"][1])


async def test_without_calibration_the_fixed_default_is_used(client, login_as, conn):
    # ECOGRAM_QUALITY_TARGET=0: nothing stored, the pipeline's defaults
    delivery = client.app[keys.delivery]
    await publish(client, login_as, flat_product(), "PLAIN")
    await delivery.eager_idle()
    assert await conn.fetchval("SELECT count(*) FROM image_quality") == 0
    response = await client.get("/img/PLAIN?w=300&fmt=webp")
    assert response.headers["X-Ecogram-Quality"] == "80"
    assert ".q." in response.headers["ETag"]


async def test_a_q_stored_after_a_render_is_served_under_its_own_key(client, login_as, conn):
    # Calibration off for this test: nothing at approval; then a q arrives as another worker's
    # calibration would store it (a row and a NOTIFY on ecogram_images). The render made before
    # must not be served for it: the address resolves again, with the q, to a new key.
    record = await publish(client, login_as, flat_product(), "LATE")
    first = await client.get("/img/LATE?w=300&fmt=webp")
    again = await client.get("/img/LATE?w=300&fmt=webp")  # a warm replay of the same answer
    assert first.headers["X-Ecogram-Quality"] == again.headers["X-Ecogram-Quality"] == "80"
    await conn.execute(
        "INSERT INTO image_quality (image_id, version, format, width, q, score, target, "
        "calibration) VALUES ($1, $2, 'webp', 0, 20, 70, 75, 1)", record["id"],
        record["version"])
    await conn.execute("SELECT pg_notify('ecogram_images', 'LATE')")
    for _ in range(100):
        later = await client.get("/img/LATE?w=300&fmt=webp")
        if later.headers["X-Ecogram-Quality"] == "20":
            break
        await asyncio.sleep(0.05)
    assert later.headers["X-Ecogram-Quality"] == "20"
    assert later.headers["ETag"] != first.headers["ETag"]
    assert len(await later.read()) < len(await first.read())


async def test_quality_settings_are_checked():
    assert Settings.from_env({}).quality_target == 70
    assert Settings.from_env({}).quality_bounds == {
        "webp": (30, 90), "avif": (20, 90), "jpeg": (55, 90)}
    assert Settings.from_env({"ECOGRAM_QUALITY_BOUNDS": "jpeg:60-85"}).quality_bounds == {
        "jpeg": (60, 85)}
    for name, raw in (("ECOGRAM_QUALITY_BOUNDS", "webp:90-50"),
                      ("ECOGRAM_QUALITY_BOUNDS", "png:10-20"),
                      ("ECOGRAM_QUALITY_BOUNDS", "webp:0-50"),
                      ("ECOGRAM_QUALITY_TARGET", "101"),
                      ("ECOGRAM_QUALITY_TARGET", "high")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: raw})


async def test_the_eager_renders_use_the_calibrated_q(client, login_as, conn):
    # Calibrated first, then the presets: the first shopper gets the calibrated bytes, a hit.
    flat = await publish(client, login_as, flat_product(), "EAGER")
    await client.app[keys.delivery].eager_idle()
    calibrated = (await stored(conn, flat["id"]))["webp"][1]
    assert calibrated != 80  # the fixed default would not tell the two apart
    before = served_count(client, "memory")
    response = await client.get("/img/EAGER?w=400&fmt=webp")
    assert served_count(client, "memory") == before + 1
    assert response.headers["X-Ecogram-Quality"] == str(calibrated)


async def test_save_data_lowers_the_calibrated_q_one_step(client, login_as, conn):
    # Save-Data composes with calibration: one step under this photo's own q, not under the
    # fixed default; an explicit q still wins over both.
    from ecogram.imaging.options import save_data_quality

    delivery = client.app[keys.delivery]
    noisy = await publish(client, login_as, noisy_photo(7), "SAVE-Q", filename="noisy.png")
    await delivery.eager_idle()
    calibrated = (await stored(conn, noisy["id"]))["webp"][1]
    plain = await client.get("/img/SAVE-Q?w=200&fmt=webp")
    assert plain.headers["X-Ecogram-Quality"] == str(calibrated)
    saving = await client.get("/img/SAVE-Q?w=200&fmt=webp", headers={"Save-Data": "on"})
    assert saving.status == 200
    assert saving.headers["X-Ecogram-Quality"] == str(save_data_quality(calibrated))
    assert "Save-Data" in saving.headers["Vary"]
    pinned = await client.get("/img/SAVE-Q?w=200&fmt=webp&q=70", headers={"Save-Data": "on"})
    assert pinned.headers["X-Ecogram-Quality"] == "70"


async def test_the_calibration_scores_the_delivered_bytes_against_the_original(
    client, login_as, conn
):
    # ECOGRAM_QUALITY_WIDTHS=200,400: each width gets its own q, and what /img serves at that
    # width without q reaches the target against the original at that size (not the master),
    # the stored score being that answer's own score.
    original = noisy_photo(3, sigma=2)  # light grain: a q between the bounds
    noisy = await publish(client, login_as, original, "DELIVERED", filename="grain.png")
    await client.app[keys.delivery].eager_idle()
    found = (await stored_widths(conn, noisy["id"]))["webp"]
    assert sorted(found) == [200, 400]
    for width, (version, q, stored_score) in found.items():
        assert version == noisy["version"] and 30 < q < 90
        response = await client.get(f"/img/DELIVERED?w={width}&fmt=webp")
        assert response.headers["X-Ecogram-Quality"] == str(q)
        reference = quality.reference(original, (width, width))
        delivered = quality.score(reference, await response.read())
        assert delivered >= 75
        assert stored_score == pytest.approx(delivered, abs=0.01)
        # one step lower misses the target at this width (up to the score's wiggles, a
        # point from one q to the next): the q is this width's own, not another width's
        lower = await client.get(f"/img/DELIVERED?w={width}&fmt=webp&q={q - 2}")
        assert quality.score(reference, await lower.read()) < 75

    # Other widths: the nearest calibrated width's q outside them, the higher of the two
    # between them; a dpr counts (w=100 at dpr 2 comes out 200 wide).
    q200, q400 = found[200][1], found[400][1]
    for ask, q in (("w=100", q200), ("w=100&dpr=2", q200), ("w=300", max(q200, q400)),
                   ("w=400&dpr=1", q400)):
        response = await client.get(f"/img/DELIVERED?{ask}&fmt=webp")
        assert response.status == 200
        assert response.headers["X-Ecogram-Quality"] == str(q), ask


async def test_quality_widths_are_checked():
    assert Settings.from_env({}).quality_widths == (400, 800)
    for raw in ("", "0", "wide"):
        with pytest.raises(SettingsError, match="ECOGRAM_QUALITY_WIDTHS"):
            Settings.from_env({"ECOGRAM_QUALITY_WIDTHS": raw})
