"""Channel renditions on real pixels: measure, whiten, trim, pad, fit, bytes.

Every photo is drawn here with pyvips (a dark product on an off-white sheet, a product on a grey
sweep, noise...) and every check reads the output's pixels: colours of corners and regions, the
non-white bounding box, the file's own header. Nothing is compared byte for byte.
"""

from __future__ import annotations

import pytest
import pyvips

from ecogram.errors import AppError
from ecogram.imaging.probe import QCLimits
from ecogram.imaging.product import NEAR_WHITE, OTHER, WHITE, Box, measure
from ecogram.imaging.vips import configure

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


def test_measure_applies_the_upload_limits() -> None:
    with pytest.raises(AppError) as caught:
        measure(jpeg(product_on(OFF_WHITE)), limits=QCLimits(max_pixels=1_000_000))
    assert caught.value.status == 413
    with pytest.raises(AppError) as caught:
        measure(b"not an image at all")
    assert caught.value.status == 415
