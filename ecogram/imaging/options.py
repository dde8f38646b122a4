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
from dataclasses import dataclass

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

    return RenderOptions(width, height, dpr, fit, gravity, fmt, quality, bg)


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
