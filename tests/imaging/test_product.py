"""Channel renditions on real pixels: measure, whiten, trim, pad, fit, bytes.

Every photo is drawn here with pyvips (a dark product on an off-white sheet, a product on a grey
sweep, noise...) and every check reads the output's pixels: colours of corners and regions, the
non-white bounding box, the file's own header. Nothing is compared byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import pyvips

from ecogram.channels import Profile, load_profiles
from ecogram.errors import AppError
from ecogram.imaging.probe import QCLimits
from ecogram.imaging.product import (
    BACKGROUND_NOT_WHITE,
    DEFAULT_FILL,
    NEAR_WHITE,
    NOT_SQUARE,
    OTHER,
    OVER_MAX_BYTES,
    QUALITIES,
    TOO_SMALL,
    WHITE,
    Box,
    Geometry,
    measure,
    plan_rendition,
    product_box,
    render_for_channel,
    rendition_key,
)
from ecogram.imaging.vips import configure

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"

OFF_WHITE = [246, 246, 244]
GREY = [128, 128, 128]
PRODUCT = [40, 30, 20]


@pytest.fixture(autouse=True, scope="module")
def _vips() -> None:
    configure()


def canvas(width: int, height: int, colour: list[int]) -> pyvips.Image:
    return pyvips.Image.black(width, height, bands=3).new_from_image(colour).copy(
        interpretation="srgb"
    )


def product_on(colour: list[int], width: int = 1600, height: int = 1200,
               box: tuple[int, int, int, int] = (500, 200, 400, 700)) -> pyvips.Image:
    """A dark product (a box with a lighter label) standing on a plain background."""
    left, top, w, h = box
    image = canvas(width, height, colour).draw_rect(PRODUCT, left, top, w, h, fill=True)
    return image.draw_rect([200, 40, 40], left + w // 4, top + h // 3, w // 2, h // 4, fill=True)


def jpeg(image: pyvips.Image, q: int = 92) -> bytes:
    return image.jpegsave_buffer(Q=q)


def around(found: Box, expected: Box, slack: int = 3) -> bool:
    """``found`` holds ``expected`` with at most ``slack`` px more on each side (measure works
    on a copy at most 512 px long and rounds outwards)."""
    return (
        expected.left - slack <= found.left <= expected.left
        and expected.top - slack <= found.top <= expected.top
        and 0 <= found.left + found.width - expected.left - expected.width <= slack
        and 0 <= found.top + found.height - expected.top - expected.height <= slack
    )


# --- measure ------------------------------------------------------------------------------------


def test_measure_off_white_background_box_and_fill() -> None:
    geometry = measure(jpeg(product_on(OFF_WHITE)))
    assert geometry.background == NEAR_WHITE
    assert all(abs(a - b) <= 2 for a, b in zip(geometry.border, OFF_WHITE, strict=True))
    assert (geometry.width, geometry.height, geometry.square) == (1600, 1200, False)
    # Found within the rounding of the 512-px copy (1600/512 ≈ 3 px), never cutting the product.
    assert around(geometry.bbox, Box(500, 200, 400, 700), slack=6)
    # Fill: the product's larger side over the frame's larger side (700 / 1600).
    assert abs(geometry.fill - 700 / 1600) < 0.01


def test_measure_pure_white_and_square() -> None:
    image = product_on([255, 255, 255], 1000, 1000, (100, 50, 800, 900))
    geometry = measure(image)  # a decoded image works too
    assert geometry.background == WHITE and geometry.border == (255, 255, 255)
    assert geometry.square
    assert abs(geometry.fill - 0.9) < 0.01


def test_measure_grey_sweep_and_lifestyle_are_other() -> None:
    grey = measure(jpeg(product_on(GREY)))
    assert grey.background == OTHER
    assert grey.bbox == Box(0, 0, 1600, 1200) and grey.fill == 1.0
    noise = pyvips.Image.gaussnoise(900, 600, mean=128, sigma=60).cast("uchar").bandjoin(
        [pyvips.Image.gaussnoise(900, 600, mean=100, sigma=50).cast("uchar")] * 2
    ).copy(interpretation="srgb")
    assert measure(jpeg(noise)).background == OTHER
    # Light but coloured (a pale yellow sheet) is not near-white either.
    assert measure(jpeg(product_on([250, 240, 200]))).background == OTHER


def test_measure_alpha_is_flattened_on_white() -> None:
    # A transparent sheet with an opaque product: flattened on white, it is a white background.
    rgba = product_on(PRODUCT, 600, 400).bandjoin(
        canvas(600, 400, [0]).draw_rect([255], 200, 100, 150, 200, fill=True)
    )
    geometry = measure(rgba.pngsave_buffer())
    assert geometry.background == WHITE
    assert around(geometry.bbox, Box(200, 100, 150, 200))


def test_measure_is_upright_and_deterministic() -> None:
    # Stored 1200 wide, 800 high with EXIF orientation 6: displayed 800 wide, 1200 high.
    image = product_on(OFF_WHITE, 1200, 800, (100, 100, 300, 200)).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    data = image.jpegsave_buffer(Q=92, keep="exif")
    first = measure(data)
    assert (first.width, first.height) == (800, 1200)
    # Turned a quarter clockwise: the stored top-left box lands top-right.
    assert first.bbox.left > 400 and first.bbox.top < 200
    assert measure(data) == first


def test_product_box_ignores_lone_specks() -> None:
    image = product_on([255, 255, 255], 400, 300, (100, 80, 120, 90))
    image = image.draw_rect([0, 0, 0], 10, 10, 1, 1, fill=True)  # a speck of dust
    image = image.draw_rect([0, 0, 0], 390, 250, 1, 1, fill=True)
    assert product_box(image, (255, 255, 255)) == Box(100, 80, 120, 90)
    assert product_box(canvas(50, 50, [255, 255, 255]), (255, 255, 255)) is None


def test_measure_applies_the_upload_limits() -> None:
    with pytest.raises(AppError) as caught:
        measure(jpeg(product_on(OFF_WHITE)), limits=QCLimits(max_pixels=1_000_000))
    assert caught.value.status == 413
    with pytest.raises(AppError) as caught:
        measure(b"not an image at all")
    assert caught.value.status == 415


# --- renditions ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles()


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "").copy_memory()


def non_white_box(image: pyvips.Image) -> Box:
    """The output's non-white bounding box: pixels more than 10 below 255 on some band (JPEG
    leaves a faint ringing of 1-5 around dark edges, which no eye calls a product)."""
    left, top, width, height = image.find_trim(threshold=10, background=[255, 255, 255])
    return Box(left, top, width, height)


def corners(image: pyvips.Image, size: int = 16) -> list[list[float]]:
    w, h = image.width, image.height
    return [
        [image.crop(x, y, size, size).extract_band(b).min() for b in range(3)]
        for x, y in ((0, 0), (w - size, 0), (0, h - size), (w - size, h - size))
    ]


def colour_at(image: pyvips.Image, left: int, top: int, size: int = 8) -> list[float]:
    area = image.crop(left, top, size, size)
    return [area.extract_band(b).avg() for b in range(3)]


def close(actual: list[float], expected: list[int], tolerance: float = 4) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize("channel", ["amazon_br", "mercadolivre", "shopee", "shopify"])
def test_off_white_product_is_padded_on_pure_white_to_the_channel_fill(
    profiles: dict[str, Profile], channel: str
) -> None:
    profile = profiles[channel]
    # The product 2200 high: enough detail for every channel's recommended side (2200 / 0.85 is
    # 2588, more than Shopify's 2048).
    source = jpeg(product_on(OFF_WHITE, 2600, 2600, (800, 200, 1283, 2200)))
    rendition = render_for_channel(source, profile, main=True)

    out = decode(rendition.data)
    side = profile.recommended
    assert (rendition.width, rendition.height) == (out.width, out.height) == (side, side)
    assert rendition.format == "jpeg" and rendition.data[:3] == b"\xff\xd8\xff"
    assert rendition.findings == ()
    assert {"whiten", "trim", "pad"} <= set(rendition.steps)
    # Pure white where the off-white sheet was, right up to the product.
    assert corners(out) == [[255, 255, 255]] * 4
    box = non_white_box(out)
    assert out.crop(0, 0, side, box.top - 8).min() == 255
    assert out.crop(0, 0, box.left - 8, side).min() == 255
    # The product fills the channel's target within 3 points, measured on the output.
    target = profile.fill or DEFAULT_FILL
    fill = max(box.width, box.height) / side
    assert abs(fill - target) <= 0.03, (fill, target)
    # Centred, proportions kept (700x1200), and still the product's colours.
    assert abs(box.left + box.width / 2 - side / 2) <= 3
    assert abs(box.top + box.height / 2 - side / 2) <= 3
    assert abs(box.width / box.height - 1283 / 2200) < 0.02
    assert close(colour_at(out, side // 2 - 4, box.top + 10), PRODUCT, 8)
    # The rendition decided from the same geometry readiness reads with measure().
    alone = measure(source)
    assert rendition.geometry.background == alone.background
    assert around(rendition.geometry.bbox, Box(800, 200, 1283, 2200), slack=8)
    assert abs(rendition.geometry.fill - alone.fill) < 0.005


def test_a_sweep_lit_brighter_in_the_middle_is_whitened_whole(
    profiles: dict[str, Profile]
) -> None:
    # Off-white at the edges (238), nearly white round the product (253), with sensor noise,
    # and a soft shadow under the product: the sheet goes pure white, the shadow stays.
    side = 1400
    xy = pyvips.Image.xyz(side, side)
    distance = ((xy[0] - side / 2) ** 2 + (xy[1] - side / 2) ** 2) ** 0.5
    noise = pyvips.Image.gaussnoise(side, side, mean=0, sigma=1.5)
    sheet = 253 - distance / (side * 0.71) * 15 + noise
    shadow = canvas(side, side, [0]).draw_rect([40], 450, 1060, 500, 40, fill=True).gaussblur(12)
    sheet = (sheet - shadow).bandjoin([sheet - shadow] * 2).cast("uchar")
    image = sheet.copy(interpretation="srgb").draw_rect(PRODUCT, 450, 300, 500, 760, fill=True)
    source = jpeg(image, 90)
    assert measure(source).background == NEAR_WHITE

    rendition = render_for_channel(source, profiles["amazon_br"], main=True)
    out = decode(rendition.data)
    box = non_white_box(out)
    outside = ((out < 255).bandor() / 255).draw_rect(
        [0], box.left - 8, box.top - 8, box.width + 16, box.height + 16, fill=True
    )
    assert outside.max() == 0  # not one off-white pixel away from the product
    assert abs(max(box.width, box.height) / out.width - 0.85) <= 0.03
    # The shadow under the product is part of the picture, not background.
    assert box.top + box.height > (box.top + round(box.width * 760 / 500)) + 4


def test_whitening_spares_the_inside_of_a_light_product(profiles: dict[str, Profile]) -> None:
    # A dark frame whose inside is the same off-white as the sheet: not connected to the border,
    # so it is the product (a white dial, a mug's inside), not background.
    image = canvas(1600, 1600, OFF_WHITE).draw_rect(PRODUCT, 400, 400, 800, 800, fill=True)
    image = image.draw_rect(OFF_WHITE, 450, 450, 700, 700, fill=True)
    rendition = render_for_channel(jpeg(image), profiles["amazon_br"], main=True)
    out = decode(rendition.data)
    assert corners(out) == [[255, 255, 255]] * 4
    middle = out.width // 2 - 4
    assert close(colour_at(out, middle, middle), OFF_WHITE, 3)


def test_white_main_without_square_whitens_in_place(profiles: dict[str, Profile]) -> None:
    # An operator's channel that wants the main photo on white but not square.
    profile = replace(profiles["amazon_br"], square=False)
    source = jpeg(product_on(OFF_WHITE, 1600, 1200, (500, 200, 400, 700)))
    main = render_for_channel(source, profile, main=True)
    out = decode(main.data)
    assert (out.width, out.height) == (1600, 1200) and main.findings == ()
    assert "whiten" in main.steps and not {"trim", "pad"} & set(main.steps)
    assert corners(out) == [[255, 255, 255]] * 4
    assert around(non_white_box(out), Box(500, 200, 400, 700), slack=4)
    # The other photos keep their sheet: nothing asks them to be white.
    other = decode(render_for_channel(source, profile, main=False).data)
    assert all(close(corner, OFF_WHITE, 3) for corner in corners(other))


def test_grey_sweep_is_left_alone_and_flagged(profiles: dict[str, Profile]) -> None:
    source = jpeg(product_on(GREY, 1600, 1200, (500, 200, 400, 700)))
    rendition = render_for_channel(source, profiles["amazon_br"], main=True)

    assert rendition.geometry.background == OTHER
    assert set(rendition.codes) == {BACKGROUND_NOT_WHITE, NOT_SQUARE}
    out = decode(rendition.data)
    # Not trimmed, not padded, not whitened: the whole photo, the same frame, still grey.
    assert (out.width, out.height) == (1600, 1200)
    assert not {"whiten", "trim", "pad"} & set(rendition.steps)
    assert all(close(corner, GREY, 3) for corner in corners(out))
    assert close(colour_at(out, 520, 220), PRODUCT, 8)
    # The same photo is not the main one: no background finding, still fit and not padded.
    other = render_for_channel(source, profiles["amazon_br"], main=False)
    assert other.codes == (NOT_SQUARE,)
    assert (other.width, other.height) == (1600, 1200)


def test_too_small_for_magalu_is_flagged_and_not_enlarged(profiles: dict[str, Profile]) -> None:
    magalu = profiles["magalu"]
    source = jpeg(product_on(OFF_WHITE, 400, 400, (100, 60, 200, 280)))
    rendition = render_for_channel(source, magalu, main=True)

    assert rendition.codes == (TOO_SMALL,)
    finding = rendition.findings[0]
    assert finding.details["min_side"] == 1000 and finding.details["width"] < 1000
    assert finding.details["limited_by"] == "detail"
    out = decode(rendition.data)
    # Padded to the channel's fill around the product's own pixels: 280 / 0.85 = 329.
    assert out.width == out.height == finding.details["width"] == 329
    box = non_white_box(out)
    assert max(box.width, box.height) <= 280 + 2  # not enlarged (JPEG edges aside)
    assert corners(out) == [[255, 255, 255]] * 4


def test_alpha_is_flattened_on_white(profiles: dict[str, Profile]) -> None:
    # A cut-out: transparent sheet, an opaque dark product, a half-transparent red band in it.
    colour = canvas(1200, 1200, [0, 0, 0]).draw_rect(PRODUCT, 300, 200, 600, 800, fill=True)
    colour = colour.draw_rect([220, 0, 0], 300, 500, 600, 200, fill=True)
    alpha = canvas(1200, 1200, [0]).draw_rect([255], 300, 200, 600, 800, fill=True)
    alpha = alpha.draw_rect([128], 300, 500, 600, 200, fill=True)
    source = colour.bandjoin(alpha).copy(interpretation="srgb").pngsave_buffer()

    for profile in (profiles["shopify"], replace(profiles["shopify"], output="png")):
        rendition = render_for_channel(source, profile, main=True)
        out = decode(rendition.data)
        assert out.bands == 3 and not out.hasalpha()
        assert rendition.format == profile.output
        assert corners(out) == [[255, 255, 255]] * 4
        box = non_white_box(out)
        # The half-transparent red is red over white now: (220+255)/2, 255/2, 255/2.
        band_top = box.top + round(box.height * 300 / 800) + 6
        assert close(colour_at(out, out.width // 2, band_top), [237, 127, 127], 8)
        assert close(colour_at(out, out.width // 2, box.top + 10), PRODUCT, 8)


@pytest.fixture(scope="module")
def noisy_3000() -> bytes:
    """A 3000x3000 photo of fine colour noise (the worst case for JPEG), 4-5 MB."""
    bands = [pyvips.Image.gaussnoise(3000, 3000, mean=m, sigma=30) for m in (128, 110, 90)]
    image = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
    return image.jpegsave_buffer(Q=85)


def test_3000_photo_fits_under_shopee_2mb(profiles: dict[str, Profile],
                                          noisy_3000: bytes) -> None:
    shopee = profiles["shopee"]
    assert len(noisy_3000) > shopee.max_bytes
    rendition = render_for_channel(noisy_3000, shopee, main=False)
    assert len(rendition.data) <= shopee.max_bytes
    out = decode(rendition.data)
    assert (out.width, out.height) == (rendition.width, rendition.height) == (1024, 1024)
    assert rendition.findings == ()


def test_quality_goes_down_step_by_step_then_the_size(profiles: dict[str, Profile],
                                                      noisy_3000: bytes) -> None:
    # An operator's Shopee at 3000 px: the size alone does not bring the file under 2 MB.
    big = replace(profiles["shopee"], recommended=3000)
    free = render_for_channel(noisy_3000, replace(big, max_bytes=None), main=False)
    assert free.quality == QUALITIES[0] and len(free.data) > 2_000_000

    rendition = render_for_channel(noisy_3000, big, main=False)
    assert len(rendition.data) <= 2_000_000
    assert "quality" in rendition.steps and rendition.findings == ()
    if "shrink" in rendition.steps:
        # The lowest quality was not enough at 3000: the sides went down, above min_side.
        assert rendition.quality in QUALITIES
        assert big.min_side <= rendition.width < 3000
    else:
        assert rendition.quality < QUALITIES[0] and rendition.width == 3000

    # A limit no quality can meet at 3000: smaller sides, never below min_side (500).
    tight = render_for_channel(noisy_3000, replace(big, max_bytes=400_000), main=False)
    assert len(tight.data) <= 400_000 and "shrink" in tight.steps
    assert 500 <= tight.width == tight.height < 3000


def test_impossible_byte_limit_is_a_finding(profiles: dict[str, Profile],
                                            noisy_3000: bytes) -> None:
    # Noise shrunk to 500 px is smooth enough to take 20 KB; 2 KB it cannot.
    shopee = replace(profiles["shopee"], max_bytes=2_000)
    rendition = render_for_channel(noisy_3000, shopee, main=False)
    assert rendition.codes == (OVER_MAX_BYTES,)
    assert rendition.quality == QUALITIES[-1]
    assert rendition.width == rendition.height == shopee.min_side
    assert rendition.findings[0].details == {"size": len(rendition.data), "max_bytes": 2_000}


def test_metadata_is_stripped_and_format_is_the_channel_s(profiles: dict[str, Profile]) -> None:
    image = product_on(OFF_WHITE, 1600, 1200).copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "someone")
    source = image.jpegsave_buffer(Q=90, keep="all", profile="srgb")
    assert decode(source).get_typeof("icc-profile-data") != 0
    webp = replace(profiles["vtex"], formats=("jpeg", "webp"), output="webp")
    for profile in (profiles["amazon_br"], webp, replace(webp, output="png",
                                                         formats=("png",))):
        rendition = render_for_channel(source, profile, main=True)
        out = decode(rendition.data)
        assert out.get("vips-loader").startswith(profile.output)
        assert rendition.content_type == f"image/{profile.output}"
        for name in ("exif-data", "xmp-data", "icc-profile-data", "iptc-data"):
            assert out.get_typeof(name) == 0, (profile.output, name)
    # A file with XMP and EXIF from a camera tool.
    xmp = (IMAGES / "valid" / "xmp_test.jpg").read_bytes()
    out = decode(render_for_channel(xmp, profiles["google"], main=True).data)
    assert out.get_typeof("xmp-data") == 0 and out.get_typeof("exif-data") == 0


def test_orientation_is_applied(profiles: dict[str, Profile]) -> None:
    # Stored 1600 wide with a red block top-left, EXIF orientation 6 (turn a quarter clockwise):
    # upright it is 1200 wide, 1600 high, the red block top-right.
    image = canvas(1600, 1200, GREY).draw_rect([220, 20, 20], 0, 0, 200, 200, fill=True)
    image = image.copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    source = image.jpegsave_buffer(Q=90, keep="exif")
    rendition = render_for_channel(source, profiles["google"], main=True)
    out = decode(rendition.data)
    assert (out.width, out.height) == (1125, 1500)
    assert close(colour_at(out, out.width - 40, 20), [220, 20, 20], 12)
    assert close(colour_at(out, 20, 20), GREY, 6)
    # The shared fixture (128x128, orientation 6) renders as libvips' own autorot of it.
    hopper = (IMAGES / "valid" / "hopper_orientation_6.jpg").read_bytes()
    rendered = decode(render_for_channel(hopper, profiles["google"], main=True).data)
    upright = pyvips.Image.new_from_buffer(hopper, "").autorot()
    assert (rendered.width, rendered.height) == (128, 128)
    for x, y in ((8, 8), (100, 8), (8, 100), (100, 100)):
        assert close(colour_at(rendered, x, y), colour_at(upright, x, y), 12)


def test_rendition_is_deterministic_and_errors_are_app_errors(
    profiles: dict[str, Profile]
) -> None:
    source = jpeg(product_on(OFF_WHITE))
    first = render_for_channel(source, profiles["mercadolivre"], main=True)
    assert render_for_channel(source, profiles["mercadolivre"], main=True) == first
    with pytest.raises(AppError) as caught:
        render_for_channel(b"\xff\xd8\xff" + bytes(200), profiles["shopee"], main=True)
    assert caught.value.status == 422
    with pytest.raises(AppError) as caught:
        render_for_channel(source, profiles["shopee"], main=True,
                           limits=QCLimits(max_bytes=1000))
    assert caught.value.status == 413
    # A truncated file is refused, not rendered with a grey band where its end is missing.
    truncated = (IMAGES / "hostile" / "truncated_jpeg.jpg").read_bytes()
    with pytest.raises(AppError) as caught:
        render_for_channel(truncated, profiles["shopee"], main=True)
    assert (caught.value.status, caught.value.code) == (500, "render_failed")
    with pytest.raises(AppError) as caught:
        measure(truncated)
    assert (caught.value.status, caught.value.code) == (422, "damaged_image")


# --- plan_rendition (no pixels) ----------------------------------------------------------------


def geometry(width: int, height: int, bbox: tuple[int, int, int, int],
             background: str = WHITE) -> Geometry:
    box = Box(*bbox)
    return Geometry(width, height, box, background, (255, 255, 255),
                    max(box.width, box.height) / max(width, height), width == height)


def test_plan_pads_to_the_recommended_side_when_detail_allows(
    profiles: dict[str, Profile]
) -> None:
    plan = plan_rendition(geometry(3000, 2000, (1000, 200, 900, 1600)), profiles["amazon_br"],
                          main=True)
    assert plan.pad and (plan.width, plan.height) == (1600, 1600)
    assert plan.product == (765, 1360) and plan.fill == 0.85  # 1360 = 0.85 x 1600
    assert plan.findings == ()


def test_plan_never_enlarges_the_product(profiles: dict[str, Profile]) -> None:
    # Product 600 px long; Amazon wants it 1360 on a 1600 canvas: the canvas shrinks instead.
    plan = plan_rendition(geometry(1000, 1000, (200, 200, 600, 400)), profiles["amazon_br"],
                          main=True)
    # The product keeps its own pixels, not even resampled to 599.
    assert plan.product == (600, 400) and plan.width == plan.height == 705  # 600 / 0.85
    assert plan.findings == ()
    too_small = plan_rendition(geometry(1000, 1000, (200, 200, 600, 400)), profiles["magalu"],
                               main=True)
    assert [f.code for f in too_small.findings] == [TOO_SMALL]


def test_plan_fits_other_backgrounds_and_keeps_min_side(profiles: dict[str, Profile]) -> None:
    lifestyle = geometry(3000, 1500, (0, 0, 3000, 1500), OTHER)
    plan = plan_rendition(lifestyle, profiles["magalu"], main=True)
    # 1200 long would give 600 high, under Magalu's 1000: the long side goes up to 1500 (its
    # max_side), 750 high, still too small, flagged rather than enlarged.
    assert not plan.pad and (plan.width, plan.height) == (1500, 750)
    assert [f.code for f in plan.findings] == [BACKGROUND_NOT_WHITE, TOO_SMALL, NOT_SQUARE]
    assert plan.findings[1].details["limited_by"] == "max_side"
    # A photo with too few pixels of its own is limited by its detail.
    tiny = plan_rendition(geometry(1200, 800, (0, 0, 1200, 800), OTHER), profiles["magalu"],
                          main=False)
    assert (tiny.width, tiny.height) == (1200, 800)
    assert [f.code for f in tiny.findings] == [TOO_SMALL, NOT_SQUARE]
    assert tiny.findings[0].details["limited_by"] == "detail"
    # A channel without a square or white rule: only fit, nothing to say.
    google = plan_rendition(lifestyle, profiles["google"], main=True)
    assert (google.width, google.height) == (1500, 750) and google.findings == ()
    # Never enlarged: a 800x600 photo stays 800x600.
    small = plan_rendition(geometry(800, 600, (0, 0, 800, 600), OTHER), profiles["google"],
                           main=False)
    assert (small.width, small.height) == (800, 600)


def test_plan_caps_the_canvas(profiles: dict[str, Profile]) -> None:
    # An operator's fill of 5 %: the canvas would be 20 times the product; it stops at 16383.
    profile = replace(profiles["shopify"], fill=0.05, recommended=100_000)
    plan = plan_rendition(geometry(5000, 5000, (0, 0, 5000, 5000)), profile, main=True)
    assert plan.width == plan.height == 16383 and max(plan.product) == round(0.05 * 16383)


def test_rendition_key_follows_what_changes_the_output(profiles: dict[str, Profile]) -> None:
    amazon = profiles["amazon_br"]
    key = rendition_key(amazon, main=True)
    assert key.startswith("r1-amazon_br-main-") and key == rendition_key(amazon, main=True)
    assert rendition_key(amazon, main=False) != key
    assert rendition_key(replace(amazon, fill=0.9), main=True) != key
    assert rendition_key(replace(amazon, max_bytes=1_000_000), main=True) != key
    # Fields that change no pixel and no finding do not change the key.
    assert rendition_key(replace(amazon, note="checked again", max_photos=7), main=True) == key


def test_channel_bench_runs(tmp_path: Path) -> None:
    """bench/channel_bench.py stays runnable (a smoke run on one small photo: no figures)."""
    (tmp_path / "product.jpg").write_bytes(jpeg(product_on(OFF_WHITE, 800, 600)))
    script = Path(__file__).parents[2] / "bench" / "channel_bench.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--channels", "shopee,google",
         "--images", str(tmp_path), "--no-pin"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert "renditions/s** on one core" in done.stdout
    assert "| product.jpg | shopee |" in done.stdout and "| product.jpg | google |" in done.stdout
