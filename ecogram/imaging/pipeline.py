"""Rendering: the master made once at import, and the variants ``/img`` serves.

``render`` is an ordered list of small steps over a job (imgproxy's shape): load with
shrink-on-load (which also turns the image upright and imports its colour profile), to sRGB,
resize/crop per ``fit``, letterbox, flatten for JPEG, encode without metadata. The sizes are
decided first, by the pure function ``plan``, so the arithmetic is testable without pixels and
the caller can tell whether the master is big enough before rendering.

Sources are images that ``probe`` accepted (or masters made from them): limits were checked at
import, so loading here applies none beyond the output-size guard.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyvips

from ecogram.errors import AppError
from ecogram.imaging.options import ALPHA_FORMATS, CONTENT_TYPES, RenderOptions

# Encoder settings, measured on a 400-wide variant (see the module report): AVIF's encoder is
# the slow one — effort 0 takes 10 ms where effort 2 takes 69 ms, for files within 2 % in size.
DEFAULT_QUALITY = {"webp": 80, "avif": 55, "jpeg": 80}
AVIF_EFFORT = 0
WEBP_EFFORT = 4
PNG_COMPRESSION = 6
MASTER_QUALITY = 92
# WebP and AVIF cannot hold more than 16383 px a side; a bigger canvas is also a cheap way to
# make the server encode hundreds of megapixels, so contain/fill canvases are capped.
MAX_OUTPUT_SIDE = 16383
MAX_OUTPUT_PIXELS = 40_000_000

# Levels of a decoded master are halved down to about this long side.
SMALLEST_LEVEL = 320


@dataclass(frozen=True)
class DecodedMaster:
    """A master decoded into memory once, as a small pyramid: full size, then halves.

    Cold sizes of a hot photo then only resize and encode, and a small size resizes from the
    smallest level that still covers it, reading a quarter (or less) of the pixels.
    """

    levels: tuple[pyvips.Image, ...]  # largest first

    @property
    def width(self) -> int:
        return self.levels[0].width

    @property
    def height(self) -> int:
        return self.levels[0].height

    @property
    def nbytes(self) -> int:
        return sum(level.width * level.height * level.bands for level in self.levels)

    def level_for(self, width: int, height: int) -> pyvips.Image:
        """The smallest level at least ``width`` x ``height``."""
        for level in reversed(self.levels):
            if level.width >= width and level.height >= height:
                return level
        return self.levels[0]


# What a render reads: an encoded file, or a master already decoded into memory.
Source = bytes | DecodedMaster


@dataclass(frozen=True)
class Plan:
    """Sizes of one render, in device pixels.

    The source is scaled (stretched only for ``fill``) to ``resize``, cut to ``crop`` (cover),
    and placed in the middle of an ``out``-sized canvas (contain). Without crop or letterbox,
    ``crop == resize == out``.
    """

    resize: tuple[int, int]
    crop: tuple[int, int]
    out: tuple[int, int]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    width: int
    height: int
    content_type: str


@dataclass(frozen=True)
class Master:
    data: bytes
    format: str  # "jpeg" or "webp"
    width: int
    height: int


def _fit_inside(sw: int, sh: int, tw: int | None, th: int | None) -> tuple[int, int]:
    """Largest size of the source's aspect within tw x th, never larger than the source."""
    if tw is None and th is None:
        return sw, sh
    ratio_w = tw / sw if tw is not None else math.inf
    ratio_h = th / sh if th is not None else math.inf
    if min(ratio_w, ratio_h) >= 1:
        return sw, sh
    if ratio_w <= ratio_h:  # width is the binding side: it gets exactly what was asked
        assert tw is not None
        return tw, max(1, min(sh, math.floor(sh * ratio_w + 0.5)))
    assert th is not None
    return max(1, min(sw, math.floor(sw * ratio_h + 0.5))), th


def plan(opts: RenderOptions, source_width: int, source_height: int) -> Plan:
    """The sizes a render will produce, from the options and the upright source size.

    - no ``w``/``h``: the source size;
    - only one of them, or ``inside``: fit within, keep aspect, never enlarge;
    - ``cover``: fill exactly w x h and crop; when that box is bigger than the source it is
      scaled down, aspect kept, until it fits — the source is never enlarged;
    - ``contain``: the canvas is exactly w x h (asked for), the picture in it fits inside and
      is never enlarged;
    - ``fill``: exactly w x h, stretched (asked for explicitly).
    """
    sw, sh = source_width, source_height
    if sw < 1 or sh < 1:
        raise ValueError("source size must be positive")
    tw, th = opts.target_size()
    if tw is None or th is None or opts.fit == "inside":
        size = _fit_inside(sw, sh, tw, th)
        return Plan(size, size, size)
    if opts.fit == "fill":
        size = (tw, th)
        return Plan(size, size, size)
    if opts.fit == "contain":
        inner = _fit_inside(sw, sh, tw, th)
        return Plan(inner, inner, (tw, th))
    # cover: the largest box of the asked aspect that the source can fill without enlarging.
    shrink = min(1.0, sw / tw, sh / th)
    bw = max(1, min(sw, math.floor(tw * shrink + 0.5)))
    bh = max(1, min(sh, math.floor(th * shrink + 0.5)))
    scale = max(bw / sw, bh / sh)
    rw = max(bw, min(sw, math.floor(sw * scale + 0.5)))
    rh = max(bh, min(sh, math.floor(sh * scale + 0.5)))
    return Plan((rw, rh), (bw, bh), (bw, bh))


# --- steps --------------------------------------------------------------------------------------


@dataclass
class _Job:
    source: Source
    opts: RenderOptions
    out_format: str
    plan: Plan
    header: pyvips.Image | None = None  # the lazily opened source: header fields only
    image: pyvips.Image | None = None
    data: bytes = b""

    @property
    def img(self) -> pyvips.Image:
        assert self.image is not None
        return self.image


def _colour_kwargs(header: pyvips.Image) -> dict[str, Any]:
    """Ask for an sRGB transform only when the file carries a profile.

    Without one the file is sRGB (or CMYK, which libvips imports with its built-in profile
    anyway), and an sRGB-to-sRGB transform would cost ~12 ms of a 40 ms render for nothing.
    """
    return {"export_profile": "srgb"} if header.get_typeof("icc-profile-data") else {}


def load(job: _Job) -> None:
    """Decode with shrink-on-load straight to the resize size, upright, profile imported.

    ``size="force"`` hits the planned size exactly; for aspect-keeping plans the stretch is
    below a pixel, so the output size is what ``plan`` promised, not libvips' own rounding.
    """
    w, h = job.plan.resize
    if isinstance(job.source, DecodedMaster):
        # A decoded master is upright sRGB already: only the resize is left to do.
        level = job.source.level_for(w, h)
        job.image = level.thumbnail_image(w, height=h, size="force", no_rotate=True)
        return
    header = job.header or pyvips.Image.new_from_buffer(job.source, "")
    job.image = pyvips.Image.thumbnail_buffer(
        job.source, w, height=h, size="force", no_rotate=False, **_colour_kwargs(header)
    )


def to_srgb(job: _Job) -> None:
    """8-bit sRGB whatever came in (grey, 16-bit, a CMYK that slipped through)."""
    image = job.img
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    job.image = image.cast("uchar") if image.format != "uchar" else image


def crop(job: _Job) -> None:
    """Cut the cover box out of the resized image, by gravity."""
    cw, ch = job.plan.crop
    image = job.img
    if (image.width, image.height) == (cw, ch):
        return
    gravity = job.opts.gravity
    if gravity in ("attention", "entropy"):
        # smartcrop reads the image several times; the loader streams once. The resized
        # image is small, so holding it in memory is cheap.
        job.image = image.copy_memory().smartcrop(cw, ch, interesting=gravity)
        return
    left = (image.width - cw) // 2
    top = (image.height - ch) // 2
    if gravity == "north":
        top = 0
    elif gravity == "south":
        top = image.height - ch
    elif gravity == "west":
        left = 0
    elif gravity == "east":
        left = image.width - cw
    job.image = image.crop(left, top, cw, ch)


def embed(job: _Job) -> None:
    """Letterbox onto the ``bg`` canvas (contain).

    A picture with alpha keeps it, bars included: bars are transparent like the picture's own
    background, and turn ``bg`` when flattened for JPEG.
    """
    ow, oh = job.plan.out
    image = job.img
    if (image.width, image.height) == (ow, oh):
        return
    background = list(job.opts.bg_rgb) + ([0] if image.hasalpha() else [])
    job.image = image.embed(
        (ow - image.width) // 2,
        (oh - image.height) // 2,
        ow,
        oh,
        extend="background",
        background=background,
    )


def flatten(job: _Job) -> None:
    """Alpha goes onto ``bg`` only for formats without it."""
    if job.img.hasalpha() and job.out_format not in ALPHA_FORMATS:
        job.image = job.img.flatten(background=list(job.opts.bg_rgb))


def encode(job: _Job) -> None:
    """Encode with no metadata at all (EXIF, XMP, ICC: the pixels are sRGB already)."""
    job.data = _save(job.img, job.out_format, job.opts.quality)


STEPS: tuple[Callable[[_Job], None], ...] = (load, to_srgb, crop, embed, flatten, encode)


def _save(image: pyvips.Image, fmt: str, quality: int | None) -> bytes:
    q = quality or DEFAULT_QUALITY.get(fmt, 80)
    if fmt == "webp":
        return image.webpsave_buffer(Q=q, effort=WEBP_EFFORT, smart_subsample=False, keep="none")
    if fmt == "avif":
        return image.heifsave_buffer(Q=q, compression="av1", effort=AVIF_EFFORT, keep="none")
    if fmt == "jpeg":
        return image.jpegsave_buffer(Q=q, optimize_coding=True, interlace=False, keep="none")
    if fmt == "png":
        return image.pngsave_buffer(compression=PNG_COMPRESSION, keep="none")
    raise ValueError(f"unknown output format {fmt!r}")


def encode_for_quality(image: pyvips.Image, fmt: str, quality: int) -> bytes:
    """``image`` encoded exactly as a render would encode it at ``quality`` (for
    ``imaging.quality``'s search)."""
    return _save(image, fmt, quality)


def _check_output(size: tuple[int, int]) -> None:
    w, h = size
    if max(w, h) > MAX_OUTPUT_SIDE or w * h > MAX_OUTPUT_PIXELS:
        raise AppError(
            400,
            "invalid_parameter",
            f"The requested size {w}x{h} is too large.",
            {"parameter": "w" if w >= h else "h"},
        )


def _upright_size(header: pyvips.Image) -> tuple[int, int]:
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):  # a quarter turn: the displayed sides swap
        return header.height, header.width
    return header.width, header.height


def render(
    source: Source,
    opts: RenderOptions,
    out_format: str,
    *,
    source_width: int,
    source_height: int,
    plan_size: tuple[int, int] | None = None,
) -> Rendered:
    """Render one variant. ``source_width``/``source_height``: the upright size of ``source``.

    ``source`` is an encoded file, or a master decoded with ``decode_master``. ``plan_size``
    is the size to plan against when the source is a downscaled master: the original's upright
    size, so a render from the master has exactly the dimensions a render from the original
    would (the master's own size is rounded). The caller makes sure the planned resize fits
    within the master.

    ``out_format`` is a concrete format (see ``options.negotiate``). Raises ``AppError`` 400
    for an oversized canvas, 500 ``render_failed`` if libvips fails on a stored source.
    The sizes given are checked against the file's header (a fraction of a millisecond): if
    they disagree — say the stored, not the upright, size was passed — the header wins, since
    planning with the wrong size would stretch the picture.
    """
    if out_format not in CONTENT_TYPES:
        raise ValueError(f"unknown output format {out_format!r}")
    try:
        header = (
            source.levels[0] if isinstance(source, DecodedMaster)
            else pyvips.Image.new_from_buffer(source, "")
        )
    except pyvips.Error:
        raise AppError(500, "render_failed", "The image could not be rendered.") from None
    size = _upright_size(header)
    if size != (source_width, source_height):
        source_width, source_height = size
    planned = plan(opts, *(plan_size or (source_width, source_height)))
    job = _Job(source, opts, out_format, planned, header)
    _check_output(job.plan.out)
    try:
        for step in STEPS:
            step(job)
    except pyvips.Error:
        raise AppError(500, "render_failed", "The image could not be rendered.") from None
    return Rendered(job.data, job.img.width, job.img.height, CONTENT_TYPES[out_format])


def source_nbytes(source: Source) -> int:
    """Memory a cached source holds."""
    return len(source) if isinstance(source, bytes) else source.nbytes


def decode_master(data: bytes) -> DecodedMaster:
    """Decode a master into memory once, with its half-size levels (a third more memory).

    Measured on the bench photos, one thread: a render from the master's bytes spent 19 of its
    ~68 ms decoding; from memory the resize takes ~9 ms at full level, a quarter of that from
    the half level. The WebP encode (~40 ms at effort 4) is then most of a cold render.
    """
    try:
        level = pyvips.Image.new_from_buffer(data, "").copy_memory()
        levels = [level]
        while max(level.width, level.height) >= 2 * SMALLEST_LEVEL:
            level = level.resize(0.5, kernel="lanczos3").copy_memory()
            levels.append(level)
    except pyvips.Error:
        raise AppError(500, "render_failed", "The image could not be rendered.") from None
    return DecodedMaster(tuple(levels))


def make_master(data: bytes, side: int) -> Master:
    """The normalised copy rendered once at import, that ``/img`` renders from.

    Upright, sRGB, long side at most ``side`` (never enlarged), first frame, no metadata.
    ``probe.inspect`` makes the same master from the decode it already does; use this one
    when the upload was probed earlier.
    """
    try:
        image = pyvips.Image.thumbnail_buffer(
            data, side, height=side, size="down", no_rotate=False,
            **_colour_kwargs(pyvips.Image.new_from_buffer(data, "")),
        )
        return encode_master(image)
    except pyvips.Error:
        raise AppError(
            422, "damaged_image", "The image could not be converted.", {"reason": "master"}
        ) from None


def encode_master(image: pyvips.Image) -> Master:
    """Encode an upright, colour-imported image as a master.

    Opaque images become JPEG q92: libjpeg's shrink-on-load decodes at 1/2, 1/4, 1/8 scale,
    so a 400-wide variant of a 2048 master decodes only 512 px. Images that really use alpha
    become lossy WebP q92 with a lossless alpha plane: libvips shrinks WebP on load too, and it
    decoded as fast as PNG in our test (107 vs 118 ms for a 3 MP cut-out to 400 px) at a
    seventh of the size, while lossless WebP took 2.2 s to encode.
    """
    job = _Job(b"", RenderOptions(), "jpeg", Plan((0, 0), (0, 0), (0, 0)), image=image)
    to_srgb(job)
    image = job.img
    fmt = "jpeg"
    if image.hasalpha():
        image = image.copy_memory()  # read twice below: once for the check, once to save
        if image.extract_band(image.bands - 1).min() < 255:
            fmt = "webp"
        else:
            image = image.extract_band(0, n=image.bands - 1)
    if fmt == "jpeg":
        # No optimize_coding (25 ms of a 57 ms master for 2 % fewer bytes); 4:2:0 chroma
        # (12 ms instead of 19 ms on 2 MP) since every variant is served 4:2:0 anyway.
        out = image.jpegsave_buffer(Q=MASTER_QUALITY, subsample_mode="on", keep="none")
    else:
        out = image.webpsave_buffer(Q=MASTER_QUALITY, alpha_q=100, effort=2, keep="none")
    return Master(out, fmt, image.width, image.height)
