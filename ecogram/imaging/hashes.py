"""Fingerprints of an image: exact (sha256), perceptual (pHash), placeholder (blurhash, colour).

The perceptual functions take a small, upright, 3-band sRGB ``uchar`` thumbnail with any alpha
already flattened (``probe`` makes one); they read its pixels into Python, which is cheap at
that size and keeps numpy out of the dependencies.
"""

from __future__ import annotations

import hashlib
import math

import pyvips
from blurhash import _functions as _blurhash  # type: ignore[attr-defined]

PHASH_SIZE = 32  # greyscale side the DCT runs on
PHASH_LOW = 8  # the top-left 8x8 low frequencies make the 64 bits
BLURHASH_COMPONENTS = (4, 3)
BLURHASH_SIDE = 32  # blurhash only sees the broad colours; more pixels just cost time

_MASK64 = (1 << 64) - 1
# cos((2x + 1) u pi / 2N) for the low frequencies u only: the separable DCT needs no more.
_COS = [
    [math.cos((2 * x + 1) * u * math.pi / (2 * PHASH_SIZE)) for x in range(PHASH_SIZE)]
    for u in range(PHASH_LOW)
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_signed64(value: int) -> int:
    """An unsigned 64-bit hash as a signed int64, so it fits a PostgreSQL ``bigint``."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming_distance(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes (signed or unsigned)."""
    return ((a ^ b) & _MASK64).bit_count()


def _pixels(image: pyvips.Image) -> bytes:
    return bytes(image.write_to_memory())


def phash(thumb: pyvips.Image) -> int:
    """64-bit DCT perceptual hash (the pHash / imagehash algorithm) as a signed int64.

    Greyscale 32x32 (aspect ignored, as pHash does), 2-D DCT-II, the 8x8 lowest frequencies,
    one bit per coefficient above their median.
    """
    grey = thumb.colourspace("b-w").thumbnail_image(
        PHASH_SIZE, height=PHASH_SIZE, size="force"
    )
    if grey.bands > 1:
        grey = grey.extract_band(0)
    grey = grey.cast("uchar")
    raw = _pixels(grey)
    n = PHASH_SIZE
    rows = [raw[y * n:(y + 1) * n] for y in range(n)]
    # Separable DCT: rows first (32 x 8 sums), then columns (8 x 8 sums).
    row_dct = [[sum(c * p for c, p in zip(cos_u, row, strict=True)) for cos_u in _COS]
               for row in rows]
    coeffs = [
        sum(_COS[v][y] * row_dct[y][u] for y in range(n))
        for v in range(PHASH_LOW)
        for u in range(PHASH_LOW)
    ]
    median = sorted(coeffs)[len(coeffs) // 2 - 1 : len(coeffs) // 2 + 1]
    threshold = (median[0] + median[1]) / 2
    value = 0
    for coeff in coeffs:
        value = (value << 1) | (coeff > threshold)
    return to_signed64(value)


def _rgb_small(thumb: pyvips.Image, side: int) -> pyvips.Image:
    if max(thumb.width, thumb.height) > side:
        thumb = thumb.thumbnail_image(side, height=side)
    return thumb


def blurhash_of(thumb: pyvips.Image) -> str:
    """Blurhash (4x3 components) of the upright sRGB thumbnail."""
    small = _rgb_small(thumb, BLURHASH_SIDE)
    # blurhash-python's ``encode`` wants a PIL image and reads it with ``getdata``, which
    # Pillow deprecates (gone in Pillow 14); its C function takes our RGB bytes directly.
    ffi, lib = _blurhash.ffi, _blurhash.lib
    pixels = ffi.new("uint8_t[]", _pixels(small))
    out = ffi.new("char[]", 2 + 4 + (9 * 9 - 1) * 2 + 1)
    result = lib.create_hash_from_pixels(
        BLURHASH_COMPONENTS[0], BLURHASH_COMPONENTS[1], small.width, small.height,
        pixels, small.width * 3, out,
    )
    if result == ffi.NULL:
        raise ValueError("blurhash failed")
    return ffi.string(result).decode()


def average_color(thumb: pyvips.Image) -> str:
    """Mean colour as ``#rrggbb``: the placeholder background shown before the image loads.

    The mean (not a histogram mode) is what a blurred placeholder converges to, so the colour
    and the blurhash agree; on product shots on white it is a light tint of the product.
    """
    stats = thumb.stats()  # row 0 is all bands, rows 1.. are per band; column 4 is the mean
    means = [stats(4, band + 1)[0] for band in range(3)]
    return "#" + "".join(f"{max(0, min(255, round(m))):02x}" for m in means)
