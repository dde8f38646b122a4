"""What comes with a file: the item to import, its fields, and the code read from its name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ecogram.errors import AppError

MAX_POSITION = 10_000
MAX_PRODUCT = 500
MAX_ALT = 1000
# A product code becomes part of /img/{code}/{position}: no slash, no URL syntax, no blanks,
# no control characters (PostgreSQL text cannot even hold NUL).
CODE_RE = re.compile(r"[^\s/\\?#%\x00-\x1f\x7f-\x9f]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class ImportItem:
    """One file to import, before its bytes are read."""

    filename: str
    load: Callable[[], bytes] | None = None  # blocking: called in a worker thread
    url: str | None = None
    code: str | None = None
    product: str | None = None
    position: int | None = None
    alt: str | None = None
    error: AppError | None = None  # refused before any byte is read (unsafe path, bad row)


@dataclass(frozen=True)
class Fields:
    """The fields that may come with files: a request's form fields, a manifest row."""

    code: str | None = None
    product: str | None = None
    position: int | None = None
    alt: str | None = None

    def apply(self, item: ImportItem) -> ImportItem:
        return replace(
            item,
            code=self.code if self.code is not None else item.code,
            product=self.product if self.product is not None else item.product,
            position=self.position if self.position is not None else item.position,
            alt=self.alt if self.alt is not None else item.alt,
        )


def invalid_field(name: str, message: str) -> AppError:
    return AppError(422, "invalid_fields", message, {"field": name})


def parse_fields(raw: dict[str, str | None]) -> Fields:
    """Validate the optional fields (``code``, ``product``, ``position``, ``alt``); 422 if bad.

    Empty values count as absent, so a manifest cell left blank falls back to the defaults.
    """
    def text(name: str) -> str | None:
        value = raw.get(name)
        value = value.strip() if value is not None else None
        return value or None

    code = text("code")
    if code is not None and not CODE_RE.fullmatch(code):
        raise invalid_field("code", "A product code is 1 to 100 characters without spaces, "
                            "slashes, '?', '#', '%' or control characters.")
    for name in ("product", "alt"):
        value = raw.get(name)
        if value is not None and _CONTROL.search(value):
            raise invalid_field(name, f"The {name} text contains control characters.")
    product = text("product")
    if product is not None and len(product) > MAX_PRODUCT:
        raise invalid_field("product", f"The product name is longer than {MAX_PRODUCT} "
                            "characters.")
    alt = text("alt")
    if alt is not None and len(alt) > MAX_ALT:
        raise invalid_field("alt", f"The alt text is longer than {MAX_ALT} characters.")
    position = None
    raw_position = text("position")
    if raw_position is not None:
        if not raw_position.isdecimal() or not 1 <= int(raw_position) <= MAX_POSITION:
            raise invalid_field("position", f"The position must be a whole number from 1 to "
                                f"{MAX_POSITION}.")
        position = int(raw_position)
    return Fields(code, product, position, alt)


def code_from_filename(filename: str, pattern: str) -> tuple[str, int | None]:
    """Code and position from a file name (``SKU-123_2.jpg`` → ``("SKU-123", 2)``).

    ``pattern`` (ECOGRAM_FILENAME_PATTERN) runs on the base name without its extension and has
    a group ``code`` and optionally ``position``. Raises 422 ``no_code`` when it does not match
    or yields an unusable code.
    """
    stem = PurePosixPath(filename.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    match = re.fullmatch(pattern, stem.strip())
    code = (match.group("code") or "").strip() if match else ""
    if not CODE_RE.fullmatch(code):
        raise AppError(
            422,
            "no_code",
            "No product code was given and none could be read from the file name "
            f"'{PurePosixPath(filename).name}'; name files like SKU-123_2.jpg or give a code.",
            {"filename": filename},
        )
    position = None
    if match and "position" in match.groupdict() and match.group("position"):
        position = int(match.group("position"))
        if not 1 <= position <= MAX_POSITION:
            position = None
    return code, position

