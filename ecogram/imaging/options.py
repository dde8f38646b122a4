"""Delivery parameters of ``/img`` (docs/api.md): parsing, normalisation and format negotiation.

Parsing is strict: every value is checked against a pattern before conversion (``int()`` would
accept ``" +4_00 "``), because each distinct spelling that renders differently costs a render and
a cache entry. ``cache_key`` is computed from what changes the output (pixel size after ``dpr``,
gravity only for ``cover``...), so equivalent URLs share one cached variant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ecogram.errors import AppError

FITS = ("inside", "cover", "contain", "fill")
GRAVITIES = ("center", "attention", "entropy", "north", "south", "east", "west")
FORMATS = ("auto", "avif", "webp", "jpeg", "png")
OUTPUT_FORMATS = ("avif", "webp", "jpeg", "png")
ALPHA_FORMATS = frozenset({"avif", "webp", "png"})
CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
}
MAX_SIDE = 10_000
MIN_DPR = 1.0
MAX_DPR = 4.0
# Parameters the delivery layer reads itself (version token, signature): allowed, ignored here.
PASS_THROUGH = frozenset({"v", "s"})
KNOWN = frozenset({"w", "h", "dpr", "fit", "g", "fmt", "q", "bg"}) | PASS_THROUGH

# Client hints (docs/delivery.md#client-hints): a DPR hint is rounded to this step, so the
# cache holds a few ratios, not one per device; Save-Data lowers the quality by one step.
HINT_DPR_STEP = 0.5
SAVE_DATA_STEP = 15
SAVE_DATA_MIN_QUALITY = 20
LOSSY_FORMATS = frozenset({"avif", "webp", "jpeg"})

_INT = re.compile(r"[0-9]{1,6}")
_DPR = re.compile(r"[0-9]{1,2}(\.[0-9]{1,6})?")
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_FORMAT_ALIASES = {"jpg": "jpeg"}
_GRAVITY_ALIASES = {"centre": "center", "smart": "attention"}


@dataclass(frozen=True)
class RenderOptions:
    """What the client asked for, normalised. ``width``/``height`` are CSS pixels."""

    width: int | None = None
    height: int | None = None
    dpr: float = 1.0
    fit: str = "inside"
    gravity: str = "center"
    fmt: str = "auto"
    quality: int | None = None
    bg: str = "ffffff"  # six lowercase hex digits
    # ``dpr`` was in the URL (else Sec-CH-DPR may set it); renders nothing differently.
    dpr_given: bool = field(default=False, compare=False)

    def target_size(self) -> tuple[int | None, int | None]:
        """The requested box in device pixels (``dpr`` applied, rounded half up)."""
        return _scaled(self.width, self.dpr), _scaled(self.height, self.dpr)

    @property
    def bg_rgb(self) -> tuple[int, int, int]:
        return int(self.bg[0:2], 16), int(self.bg[2:4], 16), int(self.bg[4:6], 16)

    def cache_key(self, out_format: str | None = None) -> str:
        """A short string equal for options that render the same bytes.

        ``out_format`` (the negotiated format) replaces ``fmt`` when given: ``fmt=auto`` renders
        differently per browser, so a cache keyed on ``auto`` alone would be wrong.
        """
        w, h = self.target_size()
        parts = [f"{w or ''}x{h or ''}"]
        if w and h:  # with one side or none, every fit keeps the aspect ratio: same output
            parts.append(self.fit)
            if self.fit == "cover":
                parts.append(self.gravity)
        parts.append(out_format or self.fmt)
        parts.append(f"q{self.quality or ''}")
        parts.append(self.bg)
        return ".".join(parts)


def _scaled(value: int | None, dpr: float) -> int | None:
    if value is None:
        return None
    return max(1, math.floor(value * dpr + 0.5))


def _bad(name: str, message: str) -> AppError:
    return AppError(400, "invalid_parameter", message, {"parameter": name})


def _side(name: str, raw: str) -> int:
    if not _INT.fullmatch(raw) or not 1 <= int(raw) <= MAX_SIDE:
        raise _bad(name, f"Parameter '{name}' must be a whole number from 1 to {MAX_SIDE}.")
    return int(raw)


def _choice(name: str, raw: str, choices: tuple[str, ...], aliases: Mapping[str, str]) -> str:
    value = raw.strip().lower()
    value = aliases.get(value, value)
    if value not in choices:
        raise _bad(name, f"Parameter '{name}' must be one of: {', '.join(choices)}.")
    return value


def parse_options(query: Mapping[str, str]) -> RenderOptions:
    """Parse the ``/img`` query; each bad value is a 400 naming the parameter."""
    getall = getattr(query, "getall", None)  # aiohttp passes a MultiDict: ?w=1&w=2 is two
    for name in query:
        if name not in KNOWN:
            raise _bad(name, f"Unknown parameter '{name}'.")
        if getall is not None and len(getall(name)) > 1:
            raise _bad(name, f"Parameter '{name}' is given more than once.")
    width = _side("w", query["w"]) if "w" in query else None
    height = _side("h", query["h"]) if "h" in query else None

    dpr = 1.0
    if "dpr" in query:
        raw = query["dpr"].strip()
        if not _DPR.fullmatch(raw) or not MIN_DPR <= float(raw) <= MAX_DPR:
            raise _bad("dpr", "Parameter 'dpr' must be a number from 1 to 4.")
        # Two decimals are plenty for a device pixel ratio and stop cache-busting spellings.
        dpr = round(float(raw), 2)

    fit = _choice("fit", query["fit"], FITS, {}) if "fit" in query else "inside"
    gravity = (
        _choice("g", query["g"], GRAVITIES, _GRAVITY_ALIASES) if "g" in query else "center"
    )
    fmt = _choice("fmt", query["fmt"], FORMATS, _FORMAT_ALIASES) if "fmt" in query else "auto"

    quality = None
    if "q" in query:
        raw = query["q"].strip()
        if not _INT.fullmatch(raw) or not 1 <= int(raw) <= 100:
            raise _bad("q", "Parameter 'q' must be a whole number from 1 to 100.")
        quality = int(raw)

    bg = "ffffff"
    if "bg" in query:
        match = _HEX.fullmatch(query["bg"].strip())
        if not match:
            raise _bad("bg", "Parameter 'bg' must be a hex colour such as fff or f0e0d0.")
        digits = match.group(1).lower()
        bg = "".join(c * 2 for c in digits) if len(digits) == 3 else digits

    return RenderOptions(width, height, dpr, fit, gravity, fmt, quality, bg, "dpr" in query)


def _accepted_types(accept: str) -> dict[str, float]:
    """Media ranges of an Accept header with their q values (the highest when repeated)."""
    accepted: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0  # an unreadable weight is no consent
                if not math.isfinite(q):
                    q = 0.0
        media = media.lower()
        accepted[media] = max(q, accepted.get(media, 0.0))
    return accepted


def negotiate(fmt: str, accept_header: str | None, has_alpha: bool) -> str:
    """The output format: explicit ``fmt`` wins; ``auto`` asks the Accept header.

    Only an explicit ``image/avif`` or ``image/webp`` with q > 0 counts: ``image/*`` and ``*/*``
    are sent by browsers that cannot decode either, so they only earn the universal formats.
    """
    if fmt != "auto":
        return fmt
    accepted = _accepted_types(accept_header or "")
    if accepted.get("image/avif", 0.0) > 0:
        return "avif"
    if accepted.get("image/webp", 0.0) > 0:
        return "webp"
    return "png" if has_alpha else "jpeg"


# --- client hints -------------------------------------------------------------------------------

class Hints(NamedTuple):
    """The client hints of a request as sent (raw header values, None when absent)."""

    width: str | None = None  # Sec-CH-Width: the image's layout width in physical pixels
    dpr: str | None = None  # Sec-CH-DPR
    save_data: str | None = None  # Save-Data


def hint_width(raw: str | None) -> int | None:
    """Sec-CH-Width as a whole number of pixels ≥ 1; anything else is no hint (a browser sent
    it: never a 400)."""
    if raw is None:
        return None
    raw = raw.strip()
    if not _INT.fullmatch(raw) or int(raw) < 1:
        return None
    return int(raw)


def hint_dpr(raw: str | None) -> float | None:
    """Sec-CH-DPR clamped to 1–4 and rounded to the nearest HINT_DPR_STEP; malformed: None."""
    if raw is None:
        return None
    raw = raw.strip()
    if not _DPR.fullmatch(raw):
        return None
    value = min(MAX_DPR, max(MIN_DPR, float(raw)))
    return math.floor(value / HINT_DPR_STEP + 0.5) * HINT_DPR_STEP


def saves_data(raw: str | None) -> bool:
    """``Save-Data: on`` (the only value the header has; anything else is off)."""
    return raw is not None and raw.strip().lower() == "on"


def save_data_quality(quality: int) -> int:
    """One step below the quality otherwise chosen (the format's default or the photo's
    calibrated one), for a client that asks to save data."""
    return max(SAVE_DATA_MIN_QUALITY, quality - SAVE_DATA_STEP)


def round_up_size(width: int, allowed: tuple[int, ...] | None) -> int:
    """The smallest allowed size ≥ ``width`` (the largest when none is); any size (up to
    MAX_SIDE) when every size is allowed."""
    if allowed is None:
        return min(width, MAX_SIDE)
    return next((size for size in allowed if size >= width), allowed[-1])


def apply_hints(
    opts: RenderOptions, hints: Hints, allowed: tuple[int, ...] | None, source_width: int
) -> RenderOptions:
    """The options once the client hints the URL leaves open are applied.

    - no ``w``: the width is Sec-CH-Width (physical pixels) rounded up to an allowed size, at
      most the original's width when the width alone bounds the picture (no enlargement: the
      same pixels as any larger size), and ``dpr`` 1 — the hint has it already (an ``h`` keeps
      its device pixels);
    - ``w`` without ``dpr``: ``dpr`` is Sec-CH-DPR (1–4, in steps of HINT_DPR_STEP), lowered
      step by step until every side is an allowed size — a hint never unlocks a size the URL
      could not ask for, signed or not.
    ``allowed`` is sorted ascending (None: any size).
    """
    if opts.width is None:
        width = hint_width(hints.width)
        if width is None:
            return opts
        width = round_up_size(width, allowed)
        if (opts.height is None or opts.fit == "inside") and width > source_width:
            width = source_width
        _, height = opts.target_size()
        return replace(opts, width=width, height=height, dpr=1.0)
    if opts.dpr_given:
        return opts
    dpr = hint_dpr(hints.dpr)
    while dpr is not None and dpr > MIN_DPR:
        hinted = replace(opts, dpr=dpr)
        if all(side is None or (side <= MAX_SIDE and (allowed is None or side in allowed))
               for side in hinted.target_size()):
            return hinted
        dpr -= HINT_DPR_STEP
    return opts


def vary(opts: RenderOptions, out_format: str) -> str:
    """The request headers that change, or could change, the answer to these options (the
    URL's, before hints): ``Accept`` for ``fmt=auto``; ``Sec-CH-Width`` without ``w``;
    ``Sec-CH-DPR`` with ``w`` and without ``dpr``; ``Save-Data`` without ``q`` in a lossy
    format. Empty when none does."""
    names = []
    if opts.fmt == "auto":
        names.append("Accept")
    if opts.width is None:
        names.append("Sec-CH-Width")
    elif not opts.dpr_given:
        names.append("Sec-CH-DPR")
    if opts.quality is None and out_format in LOSSY_FORMATS:
        names.append("Save-Data")
    return ", ".join(names)
