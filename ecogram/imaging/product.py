"""Product photos for sales channels: measure the product, then trim, whiten, pad and fit.

``measure`` reads where the product is and what it stands on; it is what readiness needs and
what ``render_for_channel`` decides from. Everything here is pixels: no database, no HTTP.

Definitions (the figures are module constants, so readiness and renditions agree):

- **border**: the outer ``BORDER_SHARE`` of each side of the upright photo, alpha flattened on
  white. Its colour is the per-band median of those pixels.
- **background** class: ``white`` when the border is uniform (at least ``UNIFORM_SHARE`` of its
  pixels within ``TOLERANCE`` of the border colour) and every band of the border colour is at
  least ``WHITE_MIN``; ``near_white`` when uniform, every band at least ``NEAR_WHITE_MIN`` and
  the bands within ``MAX_CHROMA`` of each other (light and grey: off-white paper, a lit cyclorama);
  ``other`` for everything else (a grey or coloured sweep, a lifestyle shot, a product cut by the
  frame on most of its border).
- **bbox**: the product's box against the border colour (libvips ``find_trim`` with
  ``TOLERANCE`` as threshold), in pixels of the upright photo. For ``other`` there is no
  background to trim against: the bbox is the whole frame.
- **fill**: the product's larger dimension over the side of the square the photo would be padded
  to, ``max(bbox w, h) / max(width, height)`` — how Amazon ("the product fills 85 % of the
  frame") and Mercado Livre (95 %) state it: a share of the frame's side, not of its area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyvips

from ecogram.errors import AppError
from ecogram.imaging.pipeline import _colour_kwargs, _upright_size
from ecogram.imaging.probe import QCLimits, read_header

WHITE, NEAR_WHITE, OTHER = "white", "near_white", "other"
BACKGROUNDS = (WHITE, NEAR_WHITE, OTHER)

MEASURE_SIDE = 512  # measure on a copy at most this long: the bbox is within a pixel of it
BORDER_SHARE = 0.01  # border band: 1 % of each side (at least one pixel)
TOLERANCE = 12  # a pixel within this of the border colour, on every band, is background
UNIFORM_SHARE = 0.85  # share of border pixels near the border colour for a uniform background
WHITE_MIN = 250
NEAR_WHITE_MIN = 235
MAX_CHROMA = 12


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class Geometry:
    """Where the product is in an upright photo, and what it stands on (see the module doc)."""

    width: int  # the photo, upright (EXIF orientation applied)
    height: int
    bbox: Box  # the product, in the photo's pixels; the whole frame when background is other
    background: str  # white | near_white | other
    border: tuple[int, int, int]  # the border's median colour, sRGB
    fill: float  # max(bbox.width, bbox.height) / max(width, height), 0-1
    square: bool  # width == height

    def as_dict(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "bbox": [self.bbox.left, self.bbox.top, self.bbox.width, self.bbox.height],
            "background": self.background,
            "border": "#{:02x}{:02x}{:02x}".format(*self.border),
            "fill": round(self.fill, 4),
            "square": self.square,
        }


def flat_srgb(image: pyvips.Image) -> pyvips.Image:
    """3-band 8-bit sRGB, alpha flattened on white (grey, 16-bit and CMYK-imported alike)."""
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands > 3:  # an extra band that is not alpha: drop it
        image = image.extract_band(0, n=3)
    return image.cast("uchar") if image.format != "uchar" else image


def _border_strip(image: pyvips.Image) -> pyvips.Image:
    """The border band's pixels as one strip: top, bottom, then the sides turned a quarter."""
    w, h = image.width, image.height
    band = max(1, round(min(w, h) * BORDER_SHARE))
    if 2 * band >= min(w, h):
        return image
    strip = image.crop(0, 0, w, band).join(image.crop(0, h - band, w, band), "horizontal")
    sides = image.crop(0, band, band, h - 2 * band).join(
        image.crop(w - band, band, band, h - 2 * band), "horizontal"
    ).rot90()
    return strip.join(sides, "horizontal")


def near(image: pyvips.Image, colour: tuple[int, int, int], tolerance: int) -> pyvips.Image:
    """255 where every band is within ``tolerance`` of ``colour``, else 0 (one band, uchar)."""
    return ((image - list(colour)).abs() <= tolerance).bandand()


def _classify(image: pyvips.Image) -> tuple[str, tuple[int, int, int]]:
    strip = _border_strip(image).copy_memory()
    colour = tuple(int(strip.extract_band(b).percent(50)) for b in range(3))
    border: tuple[int, int, int] = (colour[0], colour[1], colour[2])
    uniform = near(strip, border, TOLERANCE).avg() / 255 >= UNIFORM_SHARE
    if uniform and min(border) >= WHITE_MIN:
        return WHITE, border
    if uniform and min(border) >= NEAR_WHITE_MIN and max(border) - min(border) <= MAX_CHROMA:
        return NEAR_WHITE, border
    return OTHER, border


def measure_image(image: pyvips.Image, width: int | None = None,
                  height: int | None = None) -> Geometry:
    """``measure`` of an upright image already decoded; ``width``/``height``: the size the
    geometry is given in (the original's, when ``image`` is a smaller copy of it)."""
    width = width or image.width
    height = height or image.height
    small = flat_srgb(image)
    if max(small.width, small.height) > MEASURE_SIDE:
        small = small.thumbnail_image(MEASURE_SIDE, height=MEASURE_SIDE, size="down")
    small = small.copy_memory()
    background, border = _classify(small)
    bbox = Box(0, 0, width, height)
    if background != OTHER:
        left, top, w, h = small.find_trim(threshold=TOLERANCE, background=list(border))
        if w > 0 and h > 0:
            # Back to the original's pixels, rounded outwards so no product pixel is cut.
            sx, sy = width / small.width, height / small.height
            x0, y0 = math.floor(left * sx), math.floor(top * sy)
            x1 = min(width, math.ceil((left + w) * sx))
            y1 = min(height, math.ceil((top + h) * sy))
            bbox = Box(x0, y0, x1 - x0, y1 - y0)
    fill = max(bbox.width, bbox.height) / max(width, height)
    return Geometry(width, height, bbox, background, border, fill, width == height)


def _load_small(data: bytes, limits: QCLimits) -> tuple[pyvips.Image, int, int]:
    """Header checks (``probe.read_header``: bytes, type, pixels, frames), then a copy at most
    ``MEASURE_SIDE`` long decoded with shrink-on-load, upright and sRGB; and the upright size."""
    _kind, header = read_header(data, limits)
    width, height = _upright_size(header)
    small = pyvips.Image.thumbnail_buffer(
        data, MEASURE_SIDE, height=MEASURE_SIDE, size="down", no_rotate=False,
        **_colour_kwargs(header),
    )
    return small, width, height


def measure(source: bytes | pyvips.Image, *, limits: QCLimits | None = None) -> Geometry:
    """The product's box, the background class and the fill of a photo (module doc).

    ``source`` is an encoded file (checked against ``limits`` first: AppError 413/415/422 as
    ``probe`` raises them; 422 ``damaged_image`` if libvips cannot decode it) or an upright
    decoded image. Pure and deterministic; it works on a copy at most 512 px long, so a 12 MP
    JPEG costs a shrink-on-load decode and a few milliseconds.
    """
    if isinstance(source, pyvips.Image):
        return measure_image(source)
    try:
        small, width, height = _load_small(source, limits or QCLimits())
        return measure_image(small, width, height)
    except pyvips.Error:
        raise AppError(
            422, "damaged_image", "The file is damaged or incomplete and cannot be read as an "
            "image.", {"reason": "pixels"}
        ) from None
