"""Exports of the approved set to the shop platforms: Shopify, WooCommerce, Magento, JSON, ZIP.

An export streams: rows come from a server-side cursor in (code, position) order, are written
in small chunks through the caller's ``write`` (an HTTP StreamResponse or a file), and a ZIP
fetches one original at a time, so a 100,000-photo export never sits in memory. When the last
byte is written, in the same transaction, the export is recorded (table ``exports``), audited,
and its images are stamped with ``exported_at``; an export cut off half-way records nothing.

Decisions, per format (documented in docs/management.md):
- Image URLs are absolute, ``{public_url}/img/{code}/{position}?v={version}``: the version makes
  them safe to cache forever.
- Alt text is the image's ``alt``, else the product name (shops show it to screen readers);
  at most 512 characters (Shopify's limit).
- Shopify: one row per image; ``Title`` only on a product's first row (Shopify's convention:
  rows repeating a handle add images to it). ``Image Position`` numbers the exported images of a
  product 1, 2, 3… in position order (photos not in the export leave no gaps).
- WooCommerce and Magento: one row per product; Magento's labels are comma-separated, so commas
  inside a label become spaces.
- CSV cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'`` so a
  spreadsheet never runs them as formulas.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import audit
from ecogram.catalog.images import STATUSES
from ecogram.catalog.records import image_urls
from ecogram.errors import invalid

Write = Callable[[bytes], Awaitable[None]]

FORMATS = ("shopify", "woocommerce", "magento", "json", "zip")
CONTENT_TYPES = {
    "shopify": "text/csv; charset=utf-8",
    "woocommerce": "text/csv; charset=utf-8",
    "magento": "text/csv; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
}
EXTENSIONS = {"shopify": "csv", "woocommerce": "csv", "magento": "csv", "json": "json",
              "zip": "zip"}
SHOPIFY_HEADER = ["Handle", "Title", "Image Src", "Image Position", "Image Alt Text"]
WOOCOMMERCE_HEADER = ["SKU", "Name", "Images"]
MAGENTO_HEADER = ["sku", "base_image", "base_image_label", "small_image", "small_image_label",
                  "thumbnail_image", "thumbnail_image_label", "additional_images",
                  "additional_image_labels"]
MANIFEST_HEADER = ["filename", "code", "product", "position", "alt", "url", "width", "height",
                   "format", "file_size", "sha256"]
MAX_ALT = 512
MAX_CODES = 1000
CHUNK = 64 * 1024
_FILE_EXT = {"jpeg": "jpg", "tiff": "tif"}


@dataclass(frozen=True)
class ExportQuery:
    format: str
    codes: tuple[str, ...] | None = None
    since: dt.datetime | None = None
    status: str = "approved"

    def __post_init__(self) -> None:
        problems = {}
        if self.format not in FORMATS:
            problems["format"] = f"one of {', '.join(FORMATS)}"
        if self.status not in STATUSES:
            problems["status"] = f"one of {', '.join(STATUSES)}"
        if self.codes is not None and len(self.codes) > MAX_CODES:
            problems["code"] = f"at most {MAX_CODES} codes"
        if problems:
            raise invalid("Some export parameters are not acceptable.", fields=problems)

    @property
    def filters(self) -> dict[str, Any]:
        return {
            "codes": list(self.codes) if self.codes else None,
            "since": self.since.isoformat() if self.since else None,
            "status": self.status,
        }

    def filename(self, now: dt.datetime | None = None) -> str:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
        return f"ecogram-{self.format}-{stamp}.{EXTENSIONS[self.format]}"


# --- cells -----------------------------------------------------------------------------------

def neutralise(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def handle(code: str) -> str:
    """Shopify's handle: the code lower-cased, runs of other characters as one hyphen."""
    slug = re.sub(r"[^a-z0-9]+", "-", code.lower()).strip("-")
    # A code with no letter or digit at all still needs a stable, distinct handle.
    return slug or "product-" + hashlib.sha1(code.encode()).hexdigest()[:10]  # noqa: S324


def alt_text(row: asyncpg.Record) -> str:
    return (row["alt"] or row["product"] or row["code"])[:MAX_ALT]


def image_url(row: asyncpg.Record, public_url: str) -> str:
    return image_urls(row["code"], row["position"], row["version"], row["width"],
                      public_url)["src"]


def zip_name(row: asyncpg.Record) -> str:
    """``{code}_{position}.{ext}`` with the code made safe as a file name in any unzip tool."""
    code = re.sub(r"[^A-Za-z0-9._-]+", "_", row["code"]).lstrip(".") or "image"
    ext = _FILE_EXT.get(row["format"], row["format"])
    return f"{code[:100]}_{row['position']}.{ext}"


class _Buffer:
    """A text buffer that hands its bytes to ``write`` whenever it holds a chunk's worth."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self.text = io.StringIO()

    async def maybe_flush(self, force: bool = False) -> None:
        if force or self.text.tell() >= CHUNK:
            data = self.text.getvalue().encode("utf-8")
            self.text.seek(0)
            self.text.truncate()
            if data:
                await self._write(data)


# --- formats ---------------------------------------------------------------------------------

async def _products(rows: AsyncIterator[asyncpg.Record]) -> AsyncIterator[list[asyncpg.Record]]:
    """Consecutive rows of one code (the cursor is ordered by code, position)."""
    group: list[asyncpg.Record] = []
    async for row in rows:
        if group and row["code"] != group[0]["code"]:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _csv_rows(fmt: str, group: Sequence[asyncpg.Record], public_url: str) -> Iterable[list]:
    first = group[0]
    title = next((r["product"] for r in group if r["product"]), first["code"])
    if fmt == "shopify":
        for rank, row in enumerate(group, start=1):
            yield [handle(row["code"]), title if rank == 1 else "", image_url(row, public_url),
                   rank, alt_text(row)]
    elif fmt == "woocommerce":
        yield [first["code"], title, ", ".join(image_url(r, public_url) for r in group)]
    else:  # magento
        base, rest = group[0], group[1:]
        base_url, base_label = image_url(base, public_url), alt_text(base).replace(",", " ")
        yield [first["code"], base_url, base_label, base_url, base_label, base_url, base_label,
               ",".join(image_url(r, public_url) for r in rest),
               ",".join(alt_text(r).replace(",", " ") for r in rest)]


async def _write_csv(fmt: str, rows: AsyncIterator[asyncpg.Record], public_url: str,
                     write: Write, seen: list[int]) -> None:
    buffer = _Buffer(write)
    writer = csv.writer(buffer.text, lineterminator="\r\n")
    writer.writerow({"shopify": SHOPIFY_HEADER, "woocommerce": WOOCOMMERCE_HEADER,
                     "magento": MAGENTO_HEADER}[fmt])
    async for group in _products(rows):
        seen.extend(r["id"] for r in group)
        for cells in _csv_rows(fmt, group, public_url):
            writer.writerow([neutralise(cell) for cell in cells])
        await buffer.maybe_flush()
    await buffer.maybe_flush(force=True)


def _feed_image(row: asyncpg.Record, public_url: str) -> dict[str, Any]:
    urls = image_urls(row["code"], row["position"], row["version"], row["width"], public_url)
    return {
        "id": row["id"],
        "position": row["position"],
        "url": urls["src"],
        "srcset": urls["srcset"],
        "width": row["width"],
        "height": row["height"],
        "format": row["format"],
        "blurhash": row["blurhash"],
        "color": row["color"],
        "alt": alt_text(row),
        "version": row["version"],
    }


async def _write_json(rows: AsyncIterator[asyncpg.Record], public_url: str, write: Write,
                      seen: list[int]) -> None:
    buffer = _Buffer(write)
    generated = dt.datetime.now(dt.UTC).isoformat()
    buffer.text.write('{"generated_at": ' + json.dumps(generated) + ', "products": [')
    count = 0
    async for group in _products(rows):
        seen.extend(r["id"] for r in group)
        product = {
            "code": group[0]["code"],
            "product": next((r["product"] for r in group if r["product"]), ""),
            "images": [_feed_image(r, public_url) for r in group],
        }
        buffer.text.write((", " if count else "") + json.dumps(product, ensure_ascii=False))
        count += 1
        await buffer.maybe_flush()
    buffer.text.write(f'], "products_count": {count}, "images_count": {len(seen)}}}\n')
    await buffer.maybe_flush(force=True)


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


async def _write_zip(conn: asyncpg.Connection, params: dict[str, Any], public_url: str,
                     write: Write, seen: list[int]) -> None:
    pipe = _Pipe()
    manifest = io.StringIO()
    writer = csv.writer(manifest, lineterminator="\r\n")
    writer.writerow(MANIFEST_HEADER)
    used: set[str] = set()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        async with db.queries.export_originals_cursor(conn, **params) as factory:
            cursor = await factory
            # fetchrow: one original crosses from PostgreSQL at a time.
            while (row := await cursor.fetchrow()) is not None:
                name = zip_name(row)
                if name in used:  # two codes that sanitise alike: keep both, distinctly
                    stem, ext = name.rsplit(".", 1)
                    name = f"{stem}-{row['id']}.{ext}"
                used.add(name)
                seen.append(row["id"])
                writer.writerow([neutralise(cell) for cell in [
                    name, row["code"], row["product"], row["position"], alt_text(row),
                    image_url(row, public_url), row["width"], row["height"], row["format"],
                    row["file_size"], row["sha256"]]])
                archive.writestr(_zip_info(name, row["updated_at"]), bytes(row["data"]))
                del row  # drop the original's bytes before fetching the next
                await write(pipe.take())
        archive.writestr(_zip_info("manifest.csv", dt.datetime.now(dt.UTC)),
                         manifest.getvalue().encode("utf-8"))
    await write(pipe.take())


async def run_export(
    conn: asyncpg.Connection,
    actor: Identity | None,
    query: ExportQuery,
    public_url: str,
    write: Write,
    *,
    actor_name: str | None = None,
) -> int:
    """Stream the export through ``write``; record, audit and stamp it; return the image count.

    ``actor`` is None for the command line: ``actor_name`` then says who ran it.
    """
    params = {"status": query.status, "codes": list(query.codes) if query.codes else None,
              "since": query.since}
    seen: list[int] = []
    async with conn.transaction():
        if query.format == "zip":
            await _write_zip(conn, params, public_url, write, seen)
        else:
            async with db.queries.export_images_cursor(conn, **params) as rows:
                if query.format == "json":
                    await _write_json(rows, public_url, write, seen)
                else:
                    await _write_csv(query.format, rows, public_url, write, seen)
        name = actor.name if actor else (actor_name or "command line")
        export_id = await db.queries.export_record(
            conn, actor_id=actor.id if actor else None, actor=name, format=query.format,
            filters=query.filters, count=len(seen))
        if seen:
            await db.queries.export_stamp(conn, ids=seen)
        await audit.record(
            conn, actor, "export", target=query.format, actor_name=name,
            details={"export_id": export_id, "format": query.format, "filters": query.filters,
                     "count": len(seen)},
        )
    return len(seen)

