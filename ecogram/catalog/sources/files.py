"""Files on disk: an upload's temporary file, a path given to the CLI, a folder of photos."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from ecogram.catalog.sources.fields import ImportItem
from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.errors import AppError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".avif", ".gif", ".tif", ".tiff",
                  ".heic", ".heif"}
# Files that operating systems and archivers leave next to photos: never worth a report line.
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def read_limited(stream: io.BufferedIOBase, limit: int) -> bytes:
    """Read at most ``limit`` bytes in chunks; 413 as soon as there is more."""
    parts = []
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large(total, limit)
        parts.append(chunk)
    return b"".join(parts)


def file_item(path: Path, limit: int, display: str | None = None) -> ImportItem:
    """A file on disk (an upload's temporary file, or a path given to the CLI)."""
    def load() -> bytes:
        try:
            with path.open("rb") as handle:
                return read_limited(handle, limit)
        except OSError:
            raise AppError(422, "unreadable_file", "The file could not be read.") from None

    return ImportItem(filename=display or path.name, load=load)


def is_junk(name: str) -> bool:
    parts = [p for p in re.split(r"[/\\]", name) if p]
    if not parts:
        return True
    base = parts[-1].lower()
    return (
        any(p.lower() == "__macosx" for p in parts)
        or base in JUNK_NAMES
        or base.startswith("._")
    )


def walk_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted), and the other files that were skipped."""
    images: list[Path] = []
    skipped: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            path = Path(root) / name
            if is_junk(name) or name.startswith("."):
                continue
            (images if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    return images, skipped
