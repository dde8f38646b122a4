"""Calibrated quality: the lowest encoder quality whose delivered output still looks like the
source.

The metric is SSIMULACRA2 (the ``ssimulacra2`` package, numpy/scipy): a 0–100 score built on
the XYB colour space and multi-scale SSIM plus edge artefacts (ringing, blurring), tuned on
human ratings of exactly this kind of distortion — lossy web encodes — and comparable across
JPEG, WebP and AVIF. Butteraugli was the alternative; it has no maintained Python package and
reports a max-norm distance that one bad block dominates, whereas a per-image score is what
a single per-photo quality needs. Its published scale: 90 is visually lossless even when
flipping between the two, 80 "very high quality" (no difference at 1:1 viewing distance), 70
"high quality" (hard to notice artefacts without comparison), 50 "medium".

What is scored is what a shopper gets: at each width the storefront asks for (``WIDTHS``,
ECOGRAM_QUALITY_WIDTHS), the service's own render — from the 2048-px JPEG master, resized,
encoded at q — against the **original** resized to the same size and not encoded, so the
pipeline's own loss (the master, the resize from it) counts against the target as well as the
encoder's. Each width gets its own q (``calibrate``: a bisection between a floor and a ceiling,
started from the q of the width before), and ``for_width`` picks the q for any output width
from those: which width needs more differs by photo (fine colour detail needs more at 400,
fine texture at 800), so one q for all widths would make every width pay the dearest one's
(bench/README.md, "Calibrated quality"). Nothing here knows of the database: delivery calls it
at approval and stores the results (docs/delivery.md).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyvips
from ssimulacra2 import compute_ssimulacra2

from ecogram.imaging import pipeline
from ecogram.imaging.options import RenderOptions

# The version of this calibration (metric, sizes, reference, search): stored with every result,
# so a change here can tell old results from new ones (`ecogram calibrate --stale`).
# 1: the master re-encoded at 512 px against itself. 2: the delivered renders at WIDTHS
# against the original at their size, one q (the highest any width needed) for every width.
# 3: the same renders, a q per width (``for_width`` picks one for any other width).
VERSION = 3
# The widths scored by default: the storefront's (ECOGRAM_EAGER_WIDTHS' default; bench/README.md
# "Why a q per width": each keeps its own q).
WIDTHS = (400, 800)
FORMATS = ("webp", "avif", "jpeg")

# How the service renders these options in a format: the encoded file.
Render = Callable[[RenderOptions, str], bytes]


@dataclass(frozen=True, slots=True)
class Calibration:
    fmt: str
    q: int
    score: float  # SSIMULACRA2 of the output at q against the source at that size
    encodes: int  # how many encodes and comparisons the search took
    width: int  # the output width scored (the view's size; what delivery looks q up by)


@dataclass(frozen=True, slots=True)
class View:
    """One size the calibration checks: the source at that size (``reference``), and how the
    service makes that size in a format at a q (``encode``: an encoded file of the same size)."""

    reference: pyvips.Image
    encode: Callable[[str, int], bytes]
    width: int = 0


def _normalise(image: pyvips.Image) -> pyvips.Image:
    """sRGB, 3 bands of uchar, alpha flattened on white (what a product page shows), in
    memory for repeated comparisons."""
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.copy_memory()


def prepare(data: bytes | pyvips.Image, width: int) -> pyvips.Image:
    """The source fitted in ``width`` x ``width`` (never enlarged), normalised."""
    if isinstance(data, pyvips.Image):
        return _normalise(data.thumbnail_image(width, size="down"))
    return _normalise(pyvips.Image.thumbnail_buffer(data, width, size="down"))


def reference(original: bytes, size: tuple[int, int]) -> pyvips.Image:
    """The original, upright and in sRGB, resized to exactly ``size`` and not encoded: what a
    render of that size would show with no loss at all."""
    header = pyvips.Image.new_from_buffer(original, "")
    colour = {"export_profile": "srgb"} if header.get_typeof("icc-profile-data") else {}
    w, h = size
    return _normalise(pyvips.Image.thumbnail_buffer(
        original, w, height=h, size="force", no_rotate=False, **colour))


def plain(image: pyvips.Image) -> View:
    """``image`` (normalised) as its own reference, encoded directly: the encoder's loss only."""
    return View(image, lambda fmt, q: pipeline.encode_for_quality(image, fmt, q), image.width)


def views(
    original: bytes, render: Render, *, size: tuple[int, int], widths: Iterable[int] = WIDTHS
) -> list[View]:
    """One ``View`` per distinct output size of ``widths`` (narrowest first): the original at
    that size against ``render`` of ``RenderOptions(width=w, quality=q)``. ``size``: the
    original's upright size, that renders are planned on."""
    found: dict[tuple[int, int], View] = {}
    for width in sorted(set(widths)):
        out = pipeline.plan(RenderOptions(width=width), *size).out
        if out in found:  # a source narrower than both widths: one size
            continue
        found[out] = View(
            reference(original, out),
            lambda fmt, q, w=width: render(RenderOptions(width=w, quality=q), fmt),
            width,
        )
    return list(found.values())


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


def _png(image: pyvips.Image) -> io.BytesIO:
    return io.BytesIO(image.pngsave_buffer(compression=0, keep="none"))


def calibrate(
    view: View, fmt: str, *, target: float, floor: int, ceiling: int, hint: int | None = None
) -> Calibration:
    """The lowest q in [floor, ceiling] whose ``fmt`` output scores at least ``target`` at this
    view; the ceiling when none does. Assumes the score grows with q, which holds for these
    encoders up to small wiggles (at most a step of q either way).

    A bisection; with a ``hint`` (the q a neighbouring width needed, usually within a few
    steps of this one's) the bracket is found first by steps of 2, 4, 8... from the hint, which
    saves about half the encodes at the wider, dearer width (bench/README.md)."""
    if not 1 <= floor <= ceiling <= 100:
        raise ValueError("need 1 <= floor <= ceiling <= 100")
    scores: dict[int, float] = {}

    def passes(q: int) -> bool:
        scores[q] = score(view.reference, view.encode(fmt, q))
        return scores[q] >= target

    lo, hi = floor, ceiling  # the answer lies in [lo, hi]; hi passes, or is the ceiling
    if hint is not None and floor <= hint <= ceiling:
        step = 2
        if passes(hint):
            hi = hint
            while hi - step >= lo:
                if not passes(hi - step):
                    lo = hi - step + 1
                    break
                hi, step = hi - step, step * 2
        else:
            lo = hint + 1
            while lo + step - 1 < hi:
                if passes(lo + step - 1):
                    hi = lo + step - 1
                    break
                lo, step = lo + step, step * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid + 1
    if lo not in scores:  # the ceiling, never tried: every lower q failed
        passes(lo)
    return Calibration(fmt, lo, round(scores[lo], 2), len(scores), view.reference.width)


def calibrate_all(
    sizes: Sequence[View],
    formats: Iterable[str],
    *,
    target: float,
    bounds: Mapping[str, tuple[int, int]],
) -> list[Calibration]:
    """``calibrate`` for each format that has bounds, at each view (narrowest first), each
    width's search starting from the q the previous width needed — unless that was the
    ceiling: a width that needs the ceiling (or fails even there) is usually one whose fine
    colour detail only the ceiling's encoding keeps (from q90 AVIF and JPEG drop chroma
    subsampling), which says nothing of the next width."""
    found = []
    for fmt in formats:
        if fmt not in bounds:
            continue
        floor, ceiling = bounds[fmt]
        hint = None
        for view in sizes:
            result = calibrate(view, fmt, target=target, floor=floor, ceiling=ceiling, hint=hint)
            found.append(result)
            hint = result.q if result.q < ceiling else None
    return found


def for_width(table: Mapping[int, int], width: int) -> int | None:
    """The calibrated q for an output ``width``, from one photo's and format's results by
    output width (``Calibration.width``): that width's own q; between two calibrated widths the
    higher of their two (the need is not monotonic in width, so neither alone is safe); narrower
    or wider than every calibrated width, the nearest one's. Width 0 is a result of calibration
    VERSION 1 or 2, one q for every width. None: nothing calibrated."""
    if not table:
        return None
    exact = table.get(width) or table.get(0)
    if exact is not None:
        return exact
    below = max((w for w in table if w < width), default=None)
    above = min((w for w in table if w > width), default=None)
    if below is None or above is None:
        return table[above if below is None else below]
    return max(table[below], table[above])
