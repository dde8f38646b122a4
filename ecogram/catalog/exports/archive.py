"""The ZIP export: the originals, read a few MB at a time, and a manifest; built in a thread.

``zipfile`` computes CRCs and copies bytes: that work runs in a worker thread
(``asyncio.to_thread``), never on the event loop, and the archive's bytes go to the client in
chunks once the connection that read them is back in the pool.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db, storage
from ecogram.catalog.exports.formats import Write, alt_text, image_url, neutralise, send
from ecogram.catalog.exports.keys import MAX_LISTED
from ecogram.catalog.exports.walk import Walk

MANIFEST_HEADER = ["filename", "code", "product", "position", "alt", "url", "width", "height",
                   "format", "file_size", "sha256"]
ORIGINALS_BYTES = 4 * 1024 * 1024  # originals read at once (at least one)
_FILE_EXT = {"jpeg": "jpg", "tiff": "tif"}


def zip_name(row: asyncpg.Record) -> str:
    """``{code}_{position}.{ext}`` with the code made safe as a file name in any unzip tool."""
    code = re.sub(r"[^A-Za-z0-9._-]+", "_", row["code"]).lstrip(".") or "image"
    ext = _FILE_EXT.get(row["format"], row["format"])
    return f"{code[:100]}_{row['position']}.{ext}"


class _Pipe:
    """A write-only, unseekable file for zipfile: bytes wait here until the export sends them."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _zip_info(name: str, when: dt.datetime) -> zipfile.ZipInfo:
    stamp = when.astimezone(dt.UTC)
    info = zipfile.ZipInfo(name, date_time=(max(stamp.year, 1980), stamp.month, stamp.day,
                                            stamp.hour, stamp.minute, stamp.second))
    info.compress_type = zipfile.ZIP_STORED  # photos are compressed already
    info.external_attr = 0o644 << 16
    return info


def _add_members(archive: zipfile.ZipFile, pipe: _Pipe,
                 members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    """In a worker thread: the members' headers and CRCs, and the archive bytes they make."""
    for info, data in members:
        archive.writestr(info, data)
    return pipe.take()


def _finish_zip(archive: zipfile.ZipFile, pipe: _Pipe, manifest: bytes) -> bytes:
    archive.writestr(_zip_info("manifest.csv", dt.datetime.now(dt.UTC)), manifest)
    archive.close()  # the central directory
    return pipe.take()


def _by_size(rows: Sequence[asyncpg.Record], limit: int) -> Iterable[list[int]]:
    """The ids of ``rows`` in runs of about ``limit`` bytes of originals (at least one each)."""
    run: list[int] = []
    size = 0
    for row in rows:
        if run and size + row["file_size"] > limit:
            yield run
            run, size = [], 0
        run.append(row["id"])
        size += row["file_size"]
    if run:
        yield run


async def _originals(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> dict[str, bytes]:
    """The original bytes of ``rows`` by sha256, from wherever each record says they are."""
    data: dict[str, bytes] = {}
    for where in {row["store"] for row in rows}:
        data.update(await storage.get_many(
            conn, where, [row["sha256"] for row in rows if row["store"] == where]))
    return data


@dataclass
class ZipNames:
    """Member names, distinct even on a case-insensitive disk; clashes noted for the audit."""

    used: set[str] = field(default_factory=set)
    renamed: list[dict[str, Any]] = field(default_factory=list)
    renamed_count: int = 0

    def name(self, row: asyncpg.Record) -> str:
        name = zip_name(row)
        if name.casefold() in self.used:  # two codes that sanitise alike: keep both, distinctly
            stem, ext = name.rsplit(".", 1)
            clash, name = name, f"{stem}-{row['id']}.{ext}"
            self.renamed_count += 1
            if len(self.renamed) < MAX_LISTED:
                self.renamed.append({"code": row["code"], "position": row["position"],
                                     "key": name, "collides_with": clash})
        self.used.add(name.casefold())
        return name

    def details(self) -> dict[str, Any]:
        return {"column": "filename", "count": self.renamed_count, "items": self.renamed}


async def write_zip(walk: Walk, names: ZipNames, public_url: str, write: Write) -> None:
    pipe = _Pipe()
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\r\n")
    writer.writerow(MANIFEST_HEADER)
    archive = zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    async for batch in walk.batches():
        for ids in _by_size(batch, ORIGINALS_BYTES):
            async with walk.connect() as conn:
                rows = [r async for r in db.queries.export_originals(
                    conn, ids=ids, **walk.params)]
                data = await _originals(conn, rows)
            members = []
            for row in walk.mark([r for r in rows if r["id"] not in walk.seen]):
                name = names.name(row)
                writer.writerow([neutralise(cell) for cell in [
                    name, row["code"], row["product"], row["position"], alt_text(row),
                    image_url(row, public_url), row["width"], row["height"], row["format"],
                    row["file_size"], row["sha256"]]])
                members.append((_zip_info(name, row["updated_at"]), data[row["sha256"]]))
            del rows, data
            # CRCs and copies of a few MB: a worker thread's job, not the event loop's.
            await send(write, await asyncio.to_thread(_add_members, archive, pipe, members))
    await send(write, await asyncio.to_thread(_finish_zip, archive, pipe,
                                               manifest.getvalue().encode("utf-8")))
