"""Calibrated quality: the lowest encoder quality whose output still looks like the source.

The metric is SSIMULACRA2 (the ``ssimulacra2`` package, numpy/scipy): a 0–100 score built on
the XYB colour space and multi-scale SSIM plus edge artefacts (ringing, blurring), tuned on
human ratings of exactly this kind of distortion — lossy web encodes — and comparable across
JPEG, WebP and AVIF. Butteraugli was the alternative; it has no maintained Python package and
reports a max-norm distance that one bad block dominates, whereas a per-image score is what
a single per-photo quality needs. Roughly: 90 is visually lossless even when flipping
between the two, 80 is "very high quality" (no difference at 1:1 viewing distance), 70 "high".

``calibrate`` searches q by bisection between a floor and a ceiling (about six encodes and
comparisons), at a representative size, both images sRGB and the same size. Nothing here knows
of the database: delivery calls it at approval and stores the result (docs/delivery.md).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyvips
from ssimulacra2 import compute_ssimulacra2

from ecogram.imaging import pipeline

# The version of this calibration (metric, size, search): stored with every result, so a change
# here can tell old results from new ones.
VERSION = 1
# The representative size scores are taken at, on the long side (a phone's 1× to 2× image
# slot; measured in bench/README.md "Calibrated quality": on real photos the q chosen at 512 is
# the one chosen at 800 or up to 4 steps higher, for about half the time).
WIDTH = 512
FORMATS = ("webp", "avif", "jpeg")


@dataclass(frozen=True, slots=True)
class Calibration:
    fmt: str
    q: int
    score: float  # SSIMULACRA2 of the output at q against the source
    encodes: int  # how many encodes and comparisons the search took


def prepare(data: bytes | pyvips.Image, width: int = WIDTH) -> pyvips.Image:
    """The reference: the source fitted in ``width`` x ``width`` (never enlarged), sRGB, 3
    bands, alpha flattened on white (what a product page shows), in memory for repeated
    encodes."""
    if isinstance(data, pyvips.Image):
        image = data.thumbnail_image(width, size="down")
    else:
        image = pyvips.Image.thumbnail_buffer(data, width, size="down")
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.copy_memory()


def _png(image: pyvips.Image) -> io.BytesIO:
    return io.BytesIO(image.pngsave_buffer(compression=0, keep="none"))


def score(reference: pyvips.Image, candidate: bytes | pyvips.Image) -> float:
    """SSIMULACRA2 of ``candidate`` (an encoded file or an image) against ``reference``:
    100 is identical; both must be the same size."""
    if isinstance(candidate, bytes):
        candidate = pyvips.Image.new_from_buffer(candidate, "")
    if candidate.hasalpha():
        candidate = candidate.flatten(background=[255, 255, 255])
    if (candidate.width, candidate.height) != (reference.width, reference.height):
        raise ValueError("the candidate and the reference differ in size")
    return float(compute_ssimulacra2(_png(reference), _png(candidate)))


def calibrate(
    reference: pyvips.Image, fmt: str, *, target: float, floor: int, ceiling: int
) -> Calibration:
    """The lowest q in [floor, ceiling] whose ``fmt`` encode of ``reference`` scores at least
    ``target``; the ceiling when none does. Bisection: assumes the score grows with q, which
    holds for these encoders up to small wiggles (at most a step of q either way)."""
    if not 1 <= floor <= ceiling <= 100:
        raise ValueError("need 1 <= floor <= ceiling <= 100")
    scores: dict[int, float] = {}

    def passes(q: int) -> bool:
        scores[q] = score(reference, pipeline.encode_for_quality(reference, fmt, q))
        return scores[q] >= target

    lo, hi = floor, ceiling
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid + 1
    if lo not in scores:  # the ceiling, never tried: every lower q failed
        passes(lo)
    return Calibration(fmt, lo, round(scores[lo], 2), len(scores))


def calibrate_all(
    data: bytes | pyvips.Image,
    formats: Iterable[str],
    *,
    target: float,
    bounds: Mapping[str, tuple[int, int]],
    width: int = WIDTH,
) -> list[Calibration]:
    """``calibrate`` for each format that has bounds, on one reference made from ``data``."""
    reference = prepare(data, width)
    return [
        calibrate(reference, fmt, target=target, floor=bounds[fmt][0], ceiling=bounds[fmt][1])
        for fmt in formats
        if fmt in bounds
    ]
