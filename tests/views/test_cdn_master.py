"""/img renders from the stored master when it is big enough, from the original otherwise."""

from __future__ import annotations

import pytest

from ecogram import keys
from ecogram.imaging.options import parse_options
from ecogram.imaging.pipeline import DecodedMaster, plan
from tests.views.cdn_support import decode, fixture_bytes, publish

PHOTO_SIZE = (2000, 1072)  # valid/xmp_test.jpg


@pytest.fixture
def settings(settings):
    return settings.replace(master_side=1000, allowed_sizes=None, eager_widths=(), channels=())


async def test_small_sizes_render_from_the_master_and_large_ones_from_the_original(
    client, login_as
):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SRC-1")
    metrics = client.app[keys.metrics]
    small = await client.get("/img/SRC-1?w=400&fmt=jpeg")
    assert small.status == 200
    assert metrics.sample("ecogram_img_renders_total", format="jpeg", source="master") == 1
    assert metrics.sample("ecogram_img_renders_total", format="jpeg", source="original") == 0
    image = decode(await small.read())
    # Planned on the original's size: exactly what a render of the original would give,
    # although the master (1000 x 536) has its aspect only to within a pixel's rounding.
    assert (image.width, image.height) == plan(parse_options({"w": "400"}), *PHOTO_SIZE).out

    large = await client.get("/img/SRC-1?w=1500&fmt=jpeg")
    assert large.status == 200
    assert metrics.sample("ecogram_img_renders_total", format="jpeg", source="original") == 1
    image = decode(await large.read())
    assert (image.width, image.height) == plan(parse_options({"w": "1500"}), *PHOTO_SIZE).out

    # The original size itself is larger than the master: from the original, never enlarged.
    full = decode(await (await client.get("/img/SRC-1?fmt=jpeg")).read())
    assert (full.width, full.height) == PHOTO_SIZE
    assert metrics.sample("ecogram_img_renders_total", format="jpeg", source="original") == 2

    # Another size of the same photo reads the source from the masters cache, not the database.
    hits = metrics.sample("ecogram_img_masters_cache_lookups_total", result="hit")
    assert (await client.get("/img/SRC-1?w=300&fmt=jpeg")).status == 200
    assert metrics.sample("ecogram_img_masters_cache_lookups_total", result="hit") == hits + 1


async def test_the_master_is_kept_decoded_for_the_next_cold_size(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "DEC-1")
    delivery = client.app[keys.delivery]
    assert (await client.get("/img/DEC-1?w=400&fmt=webp")).status == 200
    kept = [value for key, value in delivery.masters.items() if key[2] == "master"]
    assert len(kept) == 1 and isinstance(kept[0], DecodedMaster)  # decoded, in memory
    metrics = client.app[keys.metrics]
    hits = metrics.sample("ecogram_img_masters_cache_lookups_total", result="hit")
    for width in (300, 640, 801):
        response = await client.get(f"/img/DEC-1?w={width}&fmt=webp")
        image = decode(await response.read())
        assert (image.width, image.height) == plan(
            parse_options({"w": str(width)}), *PHOTO_SIZE).out
    assert metrics.sample("ecogram_img_masters_cache_lookups_total", result="hit") == hits + 3
