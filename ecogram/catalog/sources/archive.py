"""ZIP archives, read member by member with limits that do not trust the declared sizes."""

from __future__ import annotations

import re
import threading
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ecogram.catalog.sources.fields import ImportItem
from ecogram.catalog.sources.files import is_junk
from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.errors import AppError


def unsafe_member_name(name: str) -> bool:
    """Absolute paths, drive letters and any ``..`` component (zip-slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


class ZipArchive:
    """A ZIP read member by member, with limits that do not trust the declared sizes.

    Members are inflated in 1 MB chunks; a member stops at ``max_member`` bytes (413 for it) and
    the archive stops at ``max_total`` inflated bytes in all (413 for the member that crossed it
    and every member after it). Reads may run in several threads: zipfile serialises access to
    the underlying file, and the running total is kept under a lock.
    """

    def __init__(self, path: Path, *, max_member: int, max_total: int, max_members: int) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            with path.open("rb") as handle:
                magic = handle.read(2)
            if magic != b"PK":
                raise AppError(415, "unsupported_type", "The archive is not a ZIP file.") \
                    from None
            raise AppError(422, "invalid_archive", "The ZIP file is damaged and cannot be "
                           "read.") from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            self._zip.close()
            raise AppError(
                413,
                "too_many_members",
                f"The archive holds {len(infos)} entries; the limit is {max_members}.",
                {"members": len(infos), "max_members": max_members},
            )
        self._infos = infos
        self._max_member = max_member
        self._max_total = max_total
        self._inflated = 0
        self._exhausted = False
        self._lock = threading.Lock()

    def close(self) -> None:
        self._zip.close()

    def members(self) -> list[zipfile.ZipInfo]:
        """Entries worth a report line: not directories, not archiver or OS leftovers."""
        return [i for i in self._infos if not i.is_dir() and not is_junk(i.filename)]

    def find(self, name: str) -> zipfile.ZipInfo | None:
        """A member by its path in the archive (``./`` and backslashes tolerated), else by its
        base name when exactly one member has it."""
        wanted = name.strip().replace("\\", "/").removeprefix("./")
        members = self.members()
        for info in members:
            if info.filename.replace("\\", "/").removeprefix("./") == wanted:
                return info
        base = PurePosixPath(wanted).name
        named = [i for i in members if PurePosixPath(i.filename.replace("\\", "/")).name == base]
        return named[0] if len(named) == 1 else None

    def item(self, info: zipfile.ZipInfo) -> ImportItem:
        if unsafe_member_name(info.filename):
            return ImportItem(
                filename=info.filename,
                error=AppError(
                    422,
                    "unsafe_path",
                    "The archive entry has an absolute path or '..' in its name and was "
                    "not read.",
                    {"member": info.filename},
                ),
            )
        return ImportItem(filename=info.filename, load=lambda: self.read(info))

    def read(self, info: zipfile.ZipInfo) -> bytes:
        parts = []
        size = 0
        try:
            with self._zip.open(info) as member:
                while True:
                    with self._lock:
                        if self._exhausted:
                            raise self._over_total()
                    chunk = member.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    with self._lock:
                        self._inflated += len(chunk)
                        if self._inflated > self._max_total:
                            self._exhausted = True
                            raise self._over_total()
                    if size > self._max_member:
                        raise too_large(size, self._max_member)
                    parts.append(chunk)
        except RuntimeError:  # zipfile's "encrypted, password required"
            raise AppError(422, "encrypted_member", "The archive entry is encrypted.") from None
        except NotImplementedError:
            raise AppError(
                422, "damaged_member", "The archive entry uses a compression we cannot read."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise AppError(
                422, "damaged_member", "The archive entry is damaged and could not be read."
            ) from None
        return b"".join(parts)

    def _over_total(self) -> AppError:
        return too_large(self._inflated, self._max_total, "archive_too_large",
                         "archive's inflated content")
