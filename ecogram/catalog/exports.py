"""Exports of the approved set to the shop platforms: Shopify, WooCommerce, Magento, JSON, ZIP.

An export streams at the client's pace and holds no database connection while it waits on the
client: rows come in keyset batches (``export-batch``: about ``BATCH_ROWS`` images, whole
products, in code order), each read by one statement on a connection taken from ``connect``
and given back before a byte is written. A ZIP reads the originals of a batch a few MB at a
time and builds the archive in a worker thread, never on the event loop. When the last byte is
written, one short transaction records the export (table ``exports``), audits it and stamps its
images with ``exported_at``; an export cut off half-way records nothing.

What an export contains (the table moves while it streams): each batch is one snapshot, batches
follow each other in code order and a product is always read whole. A photo whose code and
filters did not change during the export is in it exactly once; a photo is never in it twice
(one moved to a later code after its batch was read is skipped); one whose code changed
during the export appears under the code its batch saw, or not at all if it moved to a code
already written.

Decisions, per format (documented in the README):
- Image URLs are absolute, ``{public_url}/img/{code}/{position}?v={version}``: the version makes
  them safe to cache forever.
- Alt text is the image's ``alt``, else the product name (shops show it to screen readers);
  at most 512 characters (Shopify's limit).
- Shopify: one row per image; ``Title`` only on a product's first row (Shopify's convention:
  rows repeating a handle add images to it). ``Image Position`` numbers the exported images of a
  product 1, 2, 3… in position order (photos not in the export leave no gaps).
- WooCommerce and Magento: one row per product; Magento's labels are comma-separated, so commas
  inside a label become spaces.
- Product keys are unique: two codes whose Shopify handles are equal (``COLL-1``, ``coll_1``,
  ``Coll–1``), or whose SKUs are equal to a shop that compares them without case or accents
  (WooCommerce, Magento), would merge into one product. The code that came first (its oldest
  live photo) keeps its key; the others get ``-2``, ``-3``… (the first suffix no other code
  has), the same in every export, and the export's audit entry lists them. ZIP member names
  that would clash on a case-insensitive disk get ``-{id}``.
- CSV cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'`` so a
  spreadsheet never runs them as formulas.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import audit
from ecogram.catalog.images import STATUSES
from ecogram.catalog.records import image_urls
from ecogram.errors import invalid

Write = Callable[[bytes], Awaitable[None]]
# Where an export gets a connection for each short read: ``pool.acquire`` in the service. An
# export takes a connection source, not a connection, because it must give it back between
# batches (a connection held at the client's pace is the hazard this module avoids).
Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

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
BATCH_ROWS = 200  # images per keyset batch (whole products: a bigger product makes a bigger one)
CODES_BATCH = 5000  # live codes per read when product keys are made unique
ORIGINALS_BYTES = 4 * 1024 * 1024  # originals read at once for a ZIP (at least one)
MAX_LISTED = 1000  # renamed keys listed in an audit entry (the count is always there)
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

    @property
    def params(self) -> dict[str, Any]:
        """The filters as the SQL of ``exports.sql`` takes them."""
        return {"status": self.status, "codes": list(self.codes) if self.codes else None,
                "since": self.since}

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


def _unaccented(text: str) -> str:
    """Compatibility forms and accents folded away: ``Ｃafé`` → ``Cafe``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def handle(code: str) -> str:
    """Shopify's handle: the code unaccented, lower-cased, runs of other characters as one hyphen.

    Two codes may give one handle (``COLL-1``, ``coll_1``): ``ProductKeys`` makes them unique.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", _unaccented(code).lower()).strip("-")
    # A code with no letter or digit at all still needs a stable, distinct handle.
    return slug or "product-" + hashlib.sha1(code.encode()).hexdigest()[:10]  # noqa: S324


def sku_key(code: str) -> str:
    """How WooCommerce and Magento compare SKUs (MySQL's ``_ci`` collations, Magento's
    lower-cased SKU map): without case or accents."""
    return _unaccented(code).casefold()


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


# --- unique product keys ----------------------------------------------------------------------

@dataclass
class ProductKeys:
    """The key a shop identifies a product by, one per code and never shared by two codes.

    ``natural(code)`` is the code's own key (``handle`` for Shopify; the code itself for SKUs),
    ``compare(key)`` what the shop compares (SKUs without case or accents). Every live code is
    read first (``load``); among codes whose keys compare equal, the one whose oldest photo came
    first keeps its key, the others get ``-2``, ``-3``… (the first that no code has), so the same
    code gets the same key in every export, incremental or not.
    """

    column: str
    natural: Callable[[str], str]
    compare: Callable[[str], str]
    owners: dict[str, tuple[int, str]] = field(default_factory=dict)  # compared key → code
    assigned: dict[str, str] = field(default_factory=dict)  # code → renamed key
    renamed: list[dict[str, str]] = field(default_factory=list)  # in this export
    renamed_count: int = 0

    async def load(self, connect: Connect) -> None:
        clashes: dict[str, list[tuple[int, str]]] = {}
        after = ""
        while True:
            async with connect() as conn:
                rows = [r async for r in db.queries.export_live_codes(
                    conn, after=after, rows=CODES_BATCH)]
            for row in rows:
                code, first = row["code"], (row["first_id"], row["code"])
                key = self.compare(self.natural(code))
                owner = self.owners.setdefault(key, first)
                if owner != first:
                    clashes.setdefault(key, [owner]).append(first)
            if len(rows) < CODES_BATCH:
                break
            after = rows[-1]["code"]
        for key, codes in clashes.items():
            codes.sort()
            self.owners[key] = codes[0]
            for _, code in codes[1:]:
                self._rename(code)

    def _rename(self, code: str) -> str:
        base = self.natural(code)
        suffix = 2
        while self.compare(f"{base}-{suffix}") in self.owners:
            suffix += 1
        key = f"{base}-{suffix}"
        self.owners[self.compare(key)] = (0, code)  # taken, by this code
        self.assigned[code] = key
        return key

    def of(self, code: str) -> str:
        """The code's key in this export (noting it in ``renamed`` when it is not its own)."""
        if code in self.assigned:
            key = self.assigned[code]
        else:
            key = self.natural(code)
            owner = self.owners.setdefault(self.compare(key), (0, code))
            if owner[1] == code:
                return key
            key = self._rename(code)  # a code that arrived during the export
        owner_code = self.owners[self.compare(self.natural(code))][1]
        self.renamed_count += 1
        if len(self.renamed) < MAX_LISTED:
            self.renamed.append({"code": code, "key": key, "collides_with": owner_code})
        return key

    def details(self) -> dict[str, Any]:
        return {"column": self.column, "count": self.renamed_count, "items": self.renamed}


def product_keys(fmt: str) -> ProductKeys | None:
    if fmt == "shopify":
        return ProductKeys("Handle", handle, str)
    if fmt == "woocommerce":
        return ProductKeys("SKU", str, sku_key)
    if fmt == "magento":
        return ProductKeys("sku", str, sku_key)
    return None


# --- the walk ----------------------------------------------------------------------------------

@dataclass
class _Walk:
    """The export's rows in keyset batches, each read on a connection held only for the read."""

    connect: Connect
    params: dict[str, Any]
    seen: dict[int, None] = field(default_factory=dict)  # ids written, in order

    async def batches(self) -> AsyncIterator[list[asyncpg.Record]]:
        after = ""
        while True:
            async with self.connect() as conn:
                batch = [r async for r in db.queries.export_batch(
                    conn, after=after, rows=BATCH_ROWS, **self.params)]
            if not batch:
                return
            after = batch[-1]["code"]
            # A photo moved to a later code after its batch was read comes round again: once.
            fresh = [row for row in batch if row["id"] not in self.seen]
            if fresh:
                yield fresh

    async def products(self) -> AsyncIterator[list[asyncpg.Record]]:
        """Each product's rows together (a batch holds whole products), marked as written."""
        async for batch in self.batches():
            group: list[asyncpg.Record] = []
            for row in batch:
                if group and row["code"] != group[0]["code"]:
                    yield self.mark(group)
                    group = []
                group.append(row)
            yield self.mark(group)

    def mark(self, rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
        self.seen.update(dict.fromkeys(r["id"] for r in rows))
        return rows


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


async def _send(write: Write, data: bytes) -> None:
    """``data`` in chunks, so a slow client's socket buffers at most one chunk of it."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        await write(view[start:start + CHUNK])


# --- formats ---------------------------------------------------------------------------------

def _csv_rows(fmt: str, group: Sequence[asyncpg.Record], public_url: str,
              key: str) -> Iterable[list]:
    first = group[0]
    title = next((r["product"] for r in group if r["product"]), first["code"])
    if fmt == "shopify":
        for rank, row in enumerate(group, start=1):
            yield [key, title if rank == 1 else "", image_url(row, public_url), rank,
                   alt_text(row)]
    elif fmt == "woocommerce":
        yield [key, title, ", ".join(image_url(r, public_url) for r in group)]
    else:  # magento
        base, rest = group[0], group[1:]
        base_url, base_label = image_url(base, public_url), alt_text(base).replace(",", " ")
        yield [key, base_url, base_label, base_url, base_label, base_url, base_label,
               ",".join(image_url(r, public_url) for r in rest),
               ",".join(alt_text(r).replace(",", " ") for r in rest)]


async def _write_csv(fmt: str, walk: _Walk, keys: ProductKeys, public_url: str,
                     write: Write) -> None:
    buffer = _Buffer(write)
    writer = csv.writer(buffer.text, lineterminator="\r\n")
    writer.writerow({"shopify": SHOPIFY_HEADER, "woocommerce": WOOCOMMERCE_HEADER,
                     "magento": MAGENTO_HEADER}[fmt])
    async for group in walk.products():
        for cells in _csv_rows(fmt, group, public_url, keys.of(group[0]["code"])):
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


async def _write_json(walk: _Walk, public_url: str, write: Write) -> None:
    buffer = _Buffer(write)
    generated = dt.datetime.now(dt.UTC).isoformat()
    buffer.text.write('{"generated_at": ' + json.dumps(generated) + ', "products": [')
    count = 0
    async for group in walk.products():
        product = {
            "code": group[0]["code"],
            "product": next((r["product"] for r in group if r["product"]), ""),
            "images": [_feed_image(r, public_url) for r in group],
        }
        buffer.text.write((", " if count else "") + json.dumps(product, ensure_ascii=False))
        count += 1
        await buffer.maybe_flush()
    buffer.text.write(f'], "products_count": {count}, "images_count": {len(walk.seen)}}}\n')
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


@dataclass
class _ZipNames:
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


async def _write_zip(walk: _Walk, names: _ZipNames, public_url: str, write: Write) -> None:
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
            members = []
            for row in walk.mark([r for r in rows if r["id"] not in walk.seen]):
                name = names.name(row)
                writer.writerow([neutralise(cell) for cell in [
                    name, row["code"], row["product"], row["position"], alt_text(row),
                    image_url(row, public_url), row["width"], row["height"], row["format"],
                    row["file_size"], row["sha256"]]])
                members.append((_zip_info(name, row["updated_at"]), row["data"]))
            del rows
            # CRCs and copies of a few MB: a worker thread's job, not the event loop's.
            await _send(write, await asyncio.to_thread(_add_members, archive, pipe, members))
    await _send(write, await asyncio.to_thread(_finish_zip, archive, pipe,
                                               manifest.getvalue().encode("utf-8")))


async def run_export(
    connect: Connect,
    actor: Identity | None,
    query: ExportQuery,
    public_url: str,
    write: Write,
    *,
    actor_name: str | None = None,
) -> int:
    """Stream the export through ``write``; record, audit and stamp it; return the image count.

    ``connect`` lends a connection for each short read (``pool.acquire``); none is held while
    ``write`` waits on the client. ``actor`` is None for the command line: ``actor_name`` then
    says who ran it.
    """
    walk = _Walk(connect, query.params)
    renamed: dict[str, Any] | None = None
    if query.format == "zip":
        names = _ZipNames()
        await _write_zip(walk, names, public_url, write)
        renamed = names.details()
    elif query.format == "json":
        await _write_json(walk, public_url, write)
    else:
        keys = product_keys(query.format)
        assert keys is not None
        await keys.load(connect)
        await _write_csv(query.format, walk, keys, public_url, write)
        renamed = keys.details()
    seen = list(walk.seen)
    name = actor.name if actor else (actor_name or "command line")
    details: dict[str, Any] = {"format": query.format, "filters": query.filters,
                               "count": len(seen)}
    if renamed and renamed["count"]:
        details["renamed"] = renamed
    async with connect() as conn, conn.transaction():
        export_id = await db.queries.export_record(
            conn, actor_id=actor.id if actor else None, actor=name, format=query.format,
            filters=query.filters, count=len(seen))
        if seen:
            await db.queries.export_stamp(conn, ids=seen)
        await audit.record(conn, actor, "export", target=query.format, actor_name=name,
                           details={"export_id": export_id, **details})
    return len(seen)
