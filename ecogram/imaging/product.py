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
- **bbox**: the product's box against the border colour (``product_box``: the pixels further
  than ``TOLERANCE`` from it, as libvips' ``find_trim`` finds them), in pixels of the upright
  photo. For ``other`` there is no background to trim against: the bbox is the whole frame.
- **fill**: the product's larger dimension over the side of the square the photo would be padded
  to, ``max(bbox w, h) / max(width, height)`` — how Amazon ("the product fills 85 % of the
  frame") and Mercado Livre (95 %) state it: a share of the frame's side, not of its area.

``render_for_channel`` then makes what a channel should receive (issue 13), as small steps over
a job like ``pipeline.render``: check the header against the upload limits, decode once at the
channel's side with shrink-on-load (upright, sRGB, alpha flattened on white), measure that copy
with the same ``measure_image`` (so readiness and renditions agree, to the rounding of two
downscales), plan (a pure function: ``plan_rendition``), decode again larger only if the plan
needs it; then whiten + trim + pad onto a square (a white or near-white background on a square
channel) or fit (anything else; the main photo of a white-main channel is whitened in place);
encode without metadata, lowering the quality and then the size until the file is under the
channel's byte limit. What rendering cannot fix is a ``Finding``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyvips

from ecogram.channels import Profile
from ecogram.errors import AppError
from ecogram.imaging.options import CONTENT_TYPES
from ecogram.imaging.pipeline import MAX_OUTPUT_SIDE, _colour_kwargs, _save, _upright_size
from ecogram.imaging.probe import QCLimits, read_header

WHITE, NEAR_WHITE, OTHER = "white", "near_white", "other"
BACKGROUNDS = (WHITE, NEAR_WHITE, OTHER)

MEASURE_SIDE = 512  # measure on a copy at most this long: the bbox is within one of its pixels
BORDER_SHARE = 0.01  # border band: 1 % of each side (at least one pixel)
# A pixel further than this from the border colour on some band is product (bbox); whitening
# takes as background what is at least the border colour less this on every band.
TOLERANCE = 12
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


def product_box(image: pyvips.Image, colour: tuple[int, int, int]) -> Box | None:
    """The box of the pixels that differ from ``colour`` by more than ``TOLERANCE`` on some
    band, ignoring rows and columns where only one pixel does (JPEG specks); None if none do.

    libvips' ``find_trim`` answers the same question but runs a 3x3 median filter first: 12 ms
    on a 512-px copy and 170 ms on a 2 MP cut, where these two projections take 2 and 25 ms.
    """
    counts = (near(image, colour, TOLERANCE) == 0) / 255
    columns, rows = counts.project()
    xs = [i for i, n in enumerate(columns.tolist()[0]) if n > 1]
    ys = [i for i, row in enumerate(rows.tolist()) if row[0] > 1]
    if not xs or not ys:
        return None
    return Box(xs[0], ys[0], xs[-1] + 1 - xs[0], ys[-1] + 1 - ys[0])


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
    found = product_box(small, border) if background != OTHER else None
    if found is not None:
        # Back to the original's pixels, rounded outwards so no product pixel is cut.
        sx, sy = width / small.width, height / small.height
        x0, y0 = math.floor(found.left * sx), math.floor(found.top * sy)
        x1 = min(width, math.ceil((found.left + found.width) * sx))
        y1 = min(height, math.ceil((found.top + found.height) * sy))
        bbox = Box(x0, y0, x1 - x0, y1 - y0)
    fill = max(bbox.width, bbox.height) / max(width, height)
    return Geometry(width, height, bbox, background, border, fill, width == height)


# Decode failing on damage: a truncated original must not become a channel photo with a grey
# band (libvips' default fills what is missing).
_LOAD_OPTIONS = "fail_on=error"


def _load_small(data: bytes, limits: QCLimits) -> tuple[pyvips.Image, pyvips.Image]:
    """Header checks (``probe.read_header``: bytes, type, pixels, frames), then a copy at most
    ``MEASURE_SIDE`` long decoded with shrink-on-load, upright and sRGB; and the header."""
    _kind, header = read_header(data, limits)
    small = pyvips.Image.thumbnail_buffer(
        data, MEASURE_SIDE, height=MEASURE_SIDE, size="down", no_rotate=False,
        option_string=_LOAD_OPTIONS, **_colour_kwargs(header),
    )
    return small.copy_memory(), header


def measure(source: bytes | pyvips.Image, *, limits: QCLimits | None = None) -> Geometry:
    """The product's box, the background class and the fill of a photo (module doc).

    ``source`` is an encoded file (checked against ``limits`` first: AppError 413/415/422 as
    ``probe`` raises them; 422 ``damaged_image`` if libvips cannot decode it) or an upright
    decoded image. Pure and deterministic; it works on a copy at most 512 px long decoded with
    shrink-on-load: 15-40 ms of CPU for the bench photos (10 MP camera JPEG: 34 ms), most of it
    the JPEG's entropy decoding.
    """
    if isinstance(source, pyvips.Image):
        return measure_image(source)
    try:
        small, header = _load_small(source, limits or QCLimits())
        return measure_image(small, *_upright_size(header))
    except pyvips.Error:
        raise AppError(
            422, "damaged_image", "The file is damaged or incomplete and cannot be read as an "
            "image.", {"reason": "pixels"}
        ) from None


# --- renditions ---------------------------------------------------------------------------------

# Bump when a change to this module changes the pixels or bytes of a rendition: it belongs in
# every cache key and stored rendition's name, so old renditions are not served as new ones.
RENDITION_VERSION = 1
DEFAULT_FILL = 0.85  # a square channel that states no fill (Shopify, Nuvemshop...)
QUALITIES = (90, 85, 80, 75, 70, 60, 50)  # tried in turn until the file is under max_bytes
MAX_SHRINKS = 3  # then the sides are reduced, at most this many times, never below min_side

# Finding codes (stable: readiness, exports and the API show them). None is fixable by
# rendering: each needs a better photo (or, for over_max_bytes, a channel that takes more).
TOO_SMALL = "too_small"  # min_side not reached without enlarging (or within max_side)
BACKGROUND_NOT_WHITE = "background_not_white"  # main photo, white_main channel, other background
NOT_SQUARE = "not_square"  # square channel, photo left alone (other background)
OVER_MAX_BYTES = "over_max_bytes"  # still over max_bytes at the lowest quality and min_side
UNDER_MIN_BYTES = "under_min_bytes"  # smaller than the channel's min_bytes
FINDING_CODES = (TOO_SMALL, BACKGROUND_NOT_WHITE, NOT_SQUARE, OVER_MAX_BYTES, UNDER_MIN_BYTES)


@dataclass(frozen=True)
class Finding:
    """Something the rendition could not make right for the channel."""

    code: str  # one of FINDING_CODES
    message: str  # a sentence for people (English; the view may translate by code)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True)
class RenditionPlan:
    """Sizes and treatment of one rendition, decided from the geometry alone.

    ``pad``: trim to the product's bbox, scale it to ``product`` and centre it on a ``width`` x
    ``height`` (square) white canvas. Otherwise the whole photo is scaled to ``width`` x
    ``height``. Neither ever enlarges the original's pixels. ``whiten``: the white or near-white
    background becomes pure white (always with ``pad``, so the canvas has no seam; without it,
    for the main photo of a ``white_main`` channel).
    """

    pad: bool
    whiten: bool
    width: int
    height: int
    product: tuple[int, int]  # the product's size in the output (the whole photo when not pad)
    fill: float | None  # the target fill when pad
    frame: int  # long side of the whole upright photo to cut the output from (decode size)
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Rendition:
    """A photo as a channel should receive it."""

    data: bytes
    format: str  # the profile's output: jpeg, png or webp
    width: int
    height: int
    quality: int | None  # the encoder quality used (None for PNG)
    findings: tuple[Finding, ...]
    geometry: Geometry  # the source photo's, as measure() gives it
    steps: tuple[str, ...]  # what was done: whiten, trim, pad, resize, quality, shrink

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)


def _fit(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The photo's aspect with its long side ``long_side`` (never above the photo's own)."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def channel_side(profile: Profile) -> int:
    """The largest side a rendition for ``profile`` is made at: ``recommended``, capped by
    ``max_side`` and ``max_pixels`` (``min_side`` may raise a fit's long side above it)."""
    cap = profile.recommended
    if profile.max_side:
        cap = min(cap, profile.max_side)
    if profile.max_pixels:
        cap = min(cap, math.isqrt(profile.max_pixels))
    return min(cap, MAX_OUTPUT_SIDE)


# The profile fields a rendition's bytes and findings depend on.
_KEY_FIELDS = ("name", "output", "min_side", "max_side", "recommended", "max_bytes", "min_bytes",
               "max_pixels", "square", "white_main", "fill")


def rendition_key(profile: Profile, *, main: bool) -> str:
    """A name for the rendition of one photo for ``profile``, for caches and stored files:
    ``r{RENDITION_VERSION}-{channel}-{main|other}-{12 hex}``, the hex a digest of the profile
    fields the output depends on, so an operator's changed profile is not served stale."""
    values = "|".join(repr(getattr(profile, name)) for name in _KEY_FIELDS)
    digest = hashlib.sha256(values.encode()).hexdigest()[:12]
    return f"r{RENDITION_VERSION}-{profile.id}-{'main' if main else 'other'}-{digest}"


def _too_small(width: int, height: int, profile: Profile, limited_by: str) -> Finding:
    """``limited_by``: ``detail`` (more would enlarge the photo) or ``max_side`` (the channel's
    largest side, with the photo's aspect, leaves the short side under min_side)."""
    why = ("without enlarging it" if limited_by == "detail"
           else f"within its largest side of {profile.max_side}")
    return Finding(
        TOO_SMALL,
        f"The photo gives {width}x{height} pixels for {profile.name} {why}; {profile.name} "
        f"needs at least {profile.min_side} on the shortest side.",
        {"width": width, "height": height, "min_side": profile.min_side,
         "limited_by": limited_by},
    )


def plan_rendition(geometry: Geometry, profile: Profile, *, main: bool) -> RenditionPlan:
    """What ``render_for_channel`` will make of a photo measured as ``geometry`` (pure).

    - A square channel and a white or near-white background: pad. The canvas is the channel's
      ``recommended`` side (capped by ``max_side`` and ``max_pixels``) and the product's larger
      side ``fill`` of it; when that would enlarge the product, the canvas is the largest side
      at which it does not (``product long side / fill``).
    - Otherwise: fit. The main photo of a ``white_main`` channel on a white or near-white
      background is whitened in place. The long side is ``recommended`` (capped likewise),
      raised when that would put the short side under ``min_side``, never above the photo's.
    - Findings: ``too_small`` (shortest output side under ``min_side``), ``background_not_white``
      (main photo of a ``white_main`` channel on an other background), ``not_square`` (a square
      channel and a photo that is fit, not padded, and is not square).
    """
    cap = channel_side(profile)
    findings: list[Finding] = []
    if main and profile.white_main and geometry.background == OTHER:
        findings.append(Finding(
            BACKGROUND_NOT_WHITE,
            f"{profile.name} wants the main photo on pure white; this background is not white "
            "or near white, so the photo is left as it is.",
            {"border": "#{:02x}{:02x}{:02x}".format(*geometry.border)},
        ))
    if profile.square and geometry.background != OTHER:
        fill = profile.fill or DEFAULT_FILL
        bw, bh = geometry.bbox.width, geometry.bbox.height
        longest = max(bw, bh)
        side, target = cap, max(1, round(fill * cap))
        if target >= longest:  # the product at its own size: no resampling at all
            side, target = max(1, math.floor(longest / fill)), longest
        if side > MAX_OUTPUT_SIDE:  # a tiny fill in an operator's file: the canvas is capped
            side, target = MAX_OUTPUT_SIDE, min(target, round(fill * MAX_OUTPUT_SIDE))
        scale = target / longest
        product = (min(side, max(1, round(bw * scale))), min(side, max(1, round(bh * scale))))
        if profile.min_side and side < profile.min_side:
            findings.append(_too_small(side, side, profile, "detail"))
        photo = max(geometry.width, geometry.height)
        frame = min(photo, math.ceil(photo * scale) + 2)  # 2 px to spare for the rounding
        return RenditionPlan(True, True, side, side, product, fill, frame, tuple(findings))
    width, height = geometry.width, geometry.height
    out = _fit(width, height, cap)
    if profile.min_side and min(out) < profile.min_side:
        needed = math.ceil(profile.min_side * max(width, height) / min(width, height))
        out = _fit(width, height, min(needed, profile.max_side or needed))
        if profile.max_pixels and out[0] * out[1] > profile.max_pixels:
            out = _fit(width, height, cap)
    if profile.min_side and min(out) < profile.min_side:
        limited_by = "detail" if min(width, height) < profile.min_side else "max_side"
        findings.append(_too_small(*out, profile, limited_by))
    if profile.square and out[0] != out[1]:
        findings.append(Finding(
            NOT_SQUARE,
            f"{profile.name} wants square photos; this one is {out[0]}x{out[1]} and is not "
            "padded, since its background is not white.",
            {"width": out[0], "height": out[1]},
        ))
    whiten = main and profile.white_main and geometry.background != OTHER
    return RenditionPlan(False, whiten, out[0], out[1], out, None, max(out), tuple(findings))


# --- steps --------------------------------------------------------------------------------------


@dataclass
class _Job:
    data: bytes
    profile: Profile
    main: bool
    limits: QCLimits
    header: pyvips.Image | None = None
    size: tuple[int, int] = (0, 0)  # the original's, upright
    scale: float = 1.0  # the working copy's side over the original's
    geometry: Geometry | None = None
    plan: RenditionPlan | None = None
    image: pyvips.Image | None = None
    out: bytes = b""
    quality: int | None = None
    findings: list[Finding] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def img(self) -> pyvips.Image:
        assert self.image is not None
        return self.image


def _decode(job: _Job, long_side: int) -> pyvips.Image:
    """The whole photo with its long side ``long_side`` (never enlarged), decoded with
    shrink-on-load, upright, sRGB, alpha flattened on white, in memory."""
    assert job.header is not None
    image = pyvips.Image.thumbnail_buffer(
        job.data, long_side, height=long_side, size="down", no_rotate=False,
        option_string=_LOAD_OPTIONS, **_colour_kwargs(job.header),
    )
    return flat_srgb(image).copy_memory()


def load(job: _Job) -> None:
    """Header checks with the upload limits, then one decode at the channel's side.

    That is all a fit needs (unless ``min_side`` raises its long side), and all a pad needs
    when the product fills at least the channel's share of the frame; ``reload`` decodes again
    for the rest. One decode, not a small one to measure and another to render: the JPEG's
    entropy decoding, the same at any shrink, is most of a decode's cost.
    """
    _kind, job.header = read_header(job.data, job.limits)
    job.size = _upright_size(job.header)
    job.image = _decode(job, min(max(job.size), channel_side(job.profile)))


def measure_step(job: _Job) -> None:
    """``measure_image`` on the decoded copy (downsized to 512 px in memory)."""
    job.geometry = measure_image(job.img, *job.size)


def plan_step(job: _Job) -> None:
    assert job.geometry is not None
    job.plan = plan_rendition(job.geometry, job.profile, main=job.main)
    job.findings.extend(job.plan.findings)


def reload(job: _Job) -> None:
    """Decode again, larger, when the plan needs more of the photo than the first decode kept
    (a small product in a big frame; a fit raised to reach ``min_side``) and the original has
    more."""
    assert job.plan is not None
    have = max(job.img.width, job.img.height)
    if job.plan.frame > have and have < max(job.size):
        job.image = _decode(job, job.plan.frame)


def fit(job: _Job) -> None:
    """Scale the whole photo to the planned size (a pad scales only the product, in trim)."""
    assert job.plan is not None
    if job.plan.pad:
        return
    size = (job.plan.width, job.plan.height)
    if (job.img.width, job.img.height) != size:
        job.image = job.img.thumbnail_image(size[0], height=size[1], size="force")
    if size != job.size:
        job.steps.append("resize")


def cut(job: _Job) -> None:
    """Cut the box ``measure`` found out of the working copy (pad only).

    That box is a few pixels generous (found on a small copy, rounded outwards), so the cut's
    edges are background, from which ``whiten`` floods; ``trim`` then tightens it.
    """
    assert job.geometry is not None and job.plan is not None
    if not job.plan.pad:
        return
    g, image = job.geometry, job.img
    sx, sy = image.width / g.width, image.height / g.height
    job.scale = max(sx, sy)
    left, top = math.floor(g.bbox.left * sx), math.floor(g.bbox.top * sy)
    right = min(image.width, math.ceil((g.bbox.left + g.bbox.width) * sx))
    bottom = min(image.height, math.ceil((g.bbox.top + g.bbox.height) * sy))
    if (left, top, right, bottom) != (0, 0, image.width, image.height):
        job.steps.append("trim")
    job.image = image.crop(left, top, right - left, bottom - top)


def whiten(job: _Job) -> None:
    """Make the background pure white: pixels at least as light as the border colour less
    ``TOLERANCE``, on every band, and connected to the edge of the frame (or of the cut) become
    (255, 255, 255).

    A flood fill from the frame, not a threshold: the inside of a white or light product is
    enclosed by the product's own edge, so it keeps its colour. Lighter counts as background,
    not only near the border colour: a sweep lit brighter in the middle than at its edges is
    whitened whole, not left with an off-white ring.
    """
    assert job.geometry is not None and job.plan is not None
    if not job.plan.whiten:
        return
    image = job.img.copy_memory()  # read twice below; a fit comes straight from the decoder
    w, h = image.width, image.height
    light = (image >= [max(0, c - TOLERANCE) for c in job.geometry.border]).bandand()
    framed = light.embed(1, 1, w + 2, h + 2, extend="background", background=[255])
    flooded = framed.draw_flood([128], 0, 0, equal=True)
    background = flooded.crop(1, 1, w, h) == 128
    job.image = background.ifthenelse([255, 255, 255], image)
    job.steps.append("whiten")


def trim(job: _Job) -> None:
    """Tighten the cut to the product (now on pure white) and scale it to the planned size.

    ``product_box`` runs on the whitened cut at the working copy's scale, so the product fills
    the canvas as planned to the pixel. Its larger side is the plan's, or less if the tight box
    is smaller than that in the original's pixels (never enlarged beyond the original).
    """
    assert job.plan is not None
    if not job.plan.pad:
        return
    image = job.img.copy_memory()
    found = product_box(image, (255, 255, 255))
    if found is not None:
        image = image.crop(found.left, found.top, found.width, found.height)
    longest = max(image.width, image.height)
    original = math.floor(longest / job.scale)  # the product's long side in the original
    target = min(max(job.plan.product), original)
    if target != original:
        job.steps.append("resize")
    pw = max(1, round(image.width * target / longest))
    ph = max(1, round(image.height * target / longest))
    if (image.width, image.height) != (pw, ph):
        image = image.thumbnail_image(pw, height=ph, size="force")
    job.image = image.copy_memory()


def pad(job: _Job) -> None:
    """Centre the product on the planned square canvas of pure white."""
    assert job.plan is not None
    if not job.plan.pad:
        return
    p, image = job.plan, job.img
    if (image.width, image.height) != (p.width, p.height):
        job.image = image.embed(
            (p.width - image.width) // 2, (p.height - image.height) // 2, p.width, p.height,
            extend="background", background=[255, 255, 255],
        )
        job.steps.append("pad")


def encode(job: _Job) -> None:
    """Encode in the channel's format without metadata; under ``max_bytes`` if it has one.

    The quality goes down ``QUALITIES`` first; if the lowest is still over, the sides are
    reduced by the square root of the overshoot (with 5 % to spare) and the qualities tried
    again, at most ``MAX_SHRINKS`` times and never below ``min_side``.
    """
    profile, fmt = job.profile, job.profile.output
    limit = profile.max_bytes or None
    qualities: tuple[int | None, ...] = QUALITIES if fmt in ("jpeg", "webp") else (None,)
    image = job.img.copy_memory()
    for shrink in range(MAX_SHRINKS + 1):
        for quality in qualities:
            job.out, job.quality = _save(image, fmt, quality or QUALITIES[0]), quality
            if limit is None or len(job.out) <= limit:
                job.image = image
                return
            if "quality" not in job.steps and len(qualities) > 1:
                job.steps.append("quality")
        floor = profile.min_side or 1
        scale = max(0.5, math.sqrt(limit / len(job.out)) * 0.95)
        scale = max(scale, floor / min(image.width, image.height))
        if shrink == MAX_SHRINKS or scale >= 1:
            break
        width = max(1, math.floor(image.width * scale))
        height = max(1, math.floor(image.height * scale))
        image = image.thumbnail_image(width, height=height, size="force").copy_memory()
        if "shrink" not in job.steps:
            job.steps.append("shrink")
    job.image = image
    job.findings.append(Finding(
        OVER_MAX_BYTES,
        f"The photo is still {len(job.out):,} bytes at the lowest quality; {profile.name} takes "
        f"at most {limit:,}.",
        {"size": len(job.out), "max_bytes": limit},
    ))


def check_bytes(job: _Job) -> None:
    if job.profile.min_bytes and len(job.out) < job.profile.min_bytes:
        job.findings.append(Finding(
            UNDER_MIN_BYTES,
            f"The file is {len(job.out):,} bytes; {job.profile.name} wants at least "
            f"{job.profile.min_bytes:,}.",
            {"size": len(job.out), "min_bytes": job.profile.min_bytes},
        ))


STEPS: tuple[Callable[[_Job], None], ...] = (
    load, measure_step, plan_step, reload, fit, cut, whiten, trim, pad, encode, check_bytes,
)


def render_for_channel(source: bytes, profile: Profile, *, main: bool,
                       limits: QCLimits | None = None) -> Rendition:
    """The rendition of an encoded photo for ``profile``'s channel (synchronous, CPU-bound:
    run it in the render thread pool).

    ``main``: the photo is the product's first (position 1), the one ``white_main`` applies to;
    the others are trimmed, padded and fit the same way but never flagged for their background.
    ``limits``: the upload limits the file is checked against before any pixel is decoded
    (default ``QCLimits()``): AppError 413/415/422 as ``probe`` raises them. A file libvips
    fails on after that raises AppError 500 ``render_failed``.

    The output is deterministic for a given source, profile and ``RENDITION_VERSION``.
    """
    job = _Job(source, profile, main, limits or QCLimits())
    try:
        for step in STEPS:
            step(job)
    except pyvips.Error:
        raise AppError(500, "render_failed", "The image could not be rendered.") from None
    assert job.geometry is not None
    return Rendition(
        data=job.out,
        format=profile.output,
        width=job.img.width,
        height=job.img.height,
        quality=job.quality,
        findings=tuple(job.findings),
        geometry=job.geometry,
        steps=tuple(job.steps),
    )
