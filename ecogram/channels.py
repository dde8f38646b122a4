"""Channel profiles: the photo rules of each sales channel, loaded from data.

The profiles live in ``ecogram/data/channels.toml`` (one table per channel, each figure with its
source); ``ECOGRAM_CHANNELS_FILE`` names a TOML file of the same shape whose tables add channels
or override fields of the shipped ones. ``ECOGRAM_CHANNELS`` says which channels the shop sells
on (renditions rendered eagerly, columns of the readiness board).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).parent / "data" / "channels.toml"
# ECOGRAM_CHANNELS' default: the Brazilian marketplaces a shop sells on, and Google Shopping.
# The shop platforms (vtex, nuvemshop, shopify, woocommerce, magento) are left out: a shop runs on
# one of them, and each enabled channel costs eager renditions of every approved photo.
DEFAULT_ENABLED = "mercadolivre,amazon_br,magalu,shopee,google"
FORMATS = ("jpeg", "png", "webp", "gif", "tiff")
RENDER_FORMATS = ("jpeg", "png", "webp")  # what a rendition can be encoded as


class ChannelsError(ValueError):
    """A channels file that cannot be used: it names the file, the channel and the field."""


@dataclass(frozen=True)
class Profile:
    """One channel's photo rules. Sides in pixels, sizes in bytes; None: the channel sets none."""

    id: str
    name: str
    formats: tuple[str, ...] = ("jpeg",)
    output: str = "jpeg"
    min_side: int | None = None
    max_side: int | None = None
    recommended: int = 1200
    zoom_side: int | None = None
    max_bytes: int | None = None
    min_bytes: int | None = None
    max_pixels: int | None = None
    square: bool = False
    white_main: bool = False
    fill: float | None = None
    min_photos: int = 1
    max_photos: int | None = None
    sources: tuple[str, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {item.name: _plain(getattr(self, item.name)) for item in fields(self)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


_INT_FIELDS = ("min_side", "max_side", "recommended", "zoom_side", "max_bytes", "min_bytes",
               "max_pixels", "min_photos", "max_photos")


def _profile(origin: str, channel: str, table: dict[str, Any],
             base: Profile | None) -> Profile:
    def fail(field: str, message: str) -> ChannelsError:
        return ChannelsError(f"{origin}: [{channel}] {field}: {message}")

    known = {item.name for item in fields(Profile)} - {"id"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise fail(unknown[0], "unknown field")
    values: dict[str, Any] = base.as_dict() if base else {"id": channel}
    values.update(table)
    if not isinstance(values.get("name"), str) or not values["name"].strip():
        raise fail("name", "a channel needs a name")
    for name in ("formats", "sources"):
        if name in values:
            if not isinstance(values[name], list | tuple) or not all(
                isinstance(item, str) for item in values[name]
            ):
                raise fail(name, "expected a list of strings")
            values[name] = tuple(values[name])
    bad = [f for f in values.get("formats", ()) if f not in FORMATS]
    if bad:
        raise fail("formats", f"{bad[0]!r} is not one of {', '.join(FORMATS)}")
    output = values.get("output", "jpeg")
    if output not in RENDER_FORMATS or output not in values.get("formats", ("jpeg",)):
        raise fail("output", "must be one of the channel's formats and of "
                   + ", ".join(RENDER_FORMATS))
    for name in _INT_FIELDS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise fail(name, "expected a whole number, zero or more")
    for name in ("square", "white_main"):
        if name in values and not isinstance(values[name], bool):
            raise fail(name, "expected true or false")
    fill = values.get("fill")
    if fill is not None and (not isinstance(fill, int | float) or not 0 < fill <= 1):
        raise fail("fill", "expected a share of the frame between 0 and 1")
    if not isinstance(values.get("note", ""), str):
        raise fail("note", "expected text")
    if values.get("recommended", 1) <= 0:
        raise fail("recommended", "must be greater than zero")
    return Profile(**values)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ChannelsError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChannelsError(f"{path}: not valid TOML ({exc})") from None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None  # _read says why
    return info.st_mtime_ns, info.st_size


def load_profiles(extra: Path | None = None) -> dict[str, Profile]:
    """The shipped profiles, with ``extra``'s tables added or merged over them, in file order.

    Read again only when a file changed (settings ask for the profiles often)."""
    stamps = (_stamp(DATA_FILE), _stamp(extra) if extra is not None else None)
    return dict(_load(extra, stamps))


@functools.lru_cache(maxsize=8)
def _load(extra: Path | None, _stamps: object) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    sources = [(DATA_FILE, _read(DATA_FILE))]
    if extra is not None:
        sources.append((extra, _read(extra)))
    for path, data in sources:
        for channel, table in data.items():
            if not isinstance(table, dict):
                raise ChannelsError(f"{path}: {channel} must be a table ([{channel}])")
            if not channel.replace("_", "").isalnum() or not channel.islower():
                raise ChannelsError(f"{path}: [{channel}]: ids are lower-case letters, digits "
                                    "and _")
            profiles[channel] = _profile(str(path), channel, table, profiles.get(channel))
    return profiles
