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
- Product keys are unique: two codes whose Shopify handles are equal (``COLL-1``, ``coll_1``,
  ``Coll–1``), or whose SKUs are equal to a shop that compares them without case or accents
  (WooCommerce, Magento), would merge into one product. The code that came first (its oldest
  live photo) keeps its key; the others get ``-2``, ``-3``… (the first suffix no other code
  has), the same in every export, and the export's audit entry lists them. ZIP member names
  that would clash on a case-insensitive disk get ``-{id}``.
- CSV cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'`` so a
  spreadsheet never runs them as formulas.

One idea a module: ``walk`` (keyset batches on short loans), ``keys`` (unique product keys),
``formats`` (CSV and JSON), ``archive`` (ZIP); for the sales channels (issue 13), ``channel``
(readiness, geometry and channel ids per batch; rendition URLs), ``feeds`` (Google TSV, JSON
lines, renditions CSV) and ``spreadsheet`` (VTEX's .xlsx); this one is the use case that runs
them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import audit
from ecogram.catalog.exports import channel
from ecogram.catalog.exports.archive import MANIFEST_HEADER, ZipNames, write_zip, zip_name
from ecogram.catalog.exports.channel import (
    CHANNEL_FORMATS,
    ChannelExport,
    ChannelExportQuery,
    rendition_url,
)
from ecogram.catalog.exports.feeds import write_google, write_json_lines, write_renditions
from ecogram.catalog.exports.formats import (
    MAGENTO_HEADER,
    MAX_ALT,
    SHOPIFY_HEADER,
    WOOCOMMERCE_HEADER,
    Write,
    alt_text,
    image_url,
    neutralise,
    write_csv,
    write_json,
)
from ecogram.catalog.exports.keys import ProductKeys, handle, product_keys, sku_key
from ecogram.catalog.exports.spreadsheet import write_vtex
from ecogram.catalog.exports.walk import Connect, Walk
from ecogram.catalog.images import STATUSES
from ecogram.errors import invalid

__all__ = [
    "CHANNEL_FORMATS", "CONTENT_TYPES", "EXTENSIONS", "FORMATS", "MAGENTO_HEADER",
    "MANIFEST_HEADER", "MAX_ALT", "MAX_CODES", "SHOPIFY_HEADER", "WOOCOMMERCE_HEADER",
    "ChannelExportQuery", "Connect", "ExportQuery", "ProductKeys", "Write", "alt_text",
    "handle", "image_url", "neutralise", "product_keys", "rendition_url", "run_channel_export",
    "run_export", "sku_key", "zip_name",
]

FORMATS = ("shopify", "woocommerce", "magento", "json", "zip")
CONTENT_TYPES = {
    "shopify": "text/csv; charset=utf-8",
    "woocommerce": "text/csv; charset=utf-8",
    "magento": "text/csv; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
    **channel.CONTENT_TYPES,
}
EXTENSIONS = {"shopify": "csv", "woocommerce": "csv", "magento": "csv", "json": "json",
              "zip": "zip"}
MAX_CODES = 1000


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
    walk = Walk(connect, query.params)
    renamed: dict[str, Any] | None = None
    if query.format == "zip":
        names = ZipNames()
        await write_zip(walk, names, public_url, write)
        renamed = names.details()
    elif query.format == "json":
        await write_json(walk, public_url, write)
    else:
        keys = product_keys(query.format)
        assert keys is not None
        await keys.load(connect)
        await write_csv(query.format, walk, keys, public_url, write)
        renamed = keys.details()
    seen = list(walk.seen)
    extra = {"renamed": renamed} if renamed and renamed["count"] else {}
    await record_export(connect, actor, actor_name, query.format, query.filters, seen, extra)
    return len(seen)


async def record_export(connect: Connect, actor: Identity | None, actor_name: str | None,
                        fmt: str, filters: dict[str, Any], ids: list[int],
                        extra: dict[str, Any] | None = None) -> None:
    """Once the last byte is written: record the export, stamp its images, audit it (one short
    transaction). ``extra`` goes into the audit entry's details."""
    name = actor.name if actor else (actor_name or "command line")
    details: dict[str, Any] = {"format": fmt, "filters": filters, "count": len(ids),
                               **(extra or {})}
    async with connect() as conn, conn.transaction():
        export_id = await db.queries.export_record(
            conn, actor_id=actor.id if actor else None, actor=name, format=fmt,
            filters=filters, count=len(ids))
        if ids:
            await db.queries.export_stamp(conn, ids=ids)
        await audit.record(conn, actor, "export", target=fmt, actor_name=name,
                           details={"export_id": export_id, **details})


async def run_channel_export(
    connect: Connect,
    actor: Identity | None,
    query: ChannelExportQuery,
    public_url: str,
    write: Write,
    *,
    actor_name: str | None = None,
) -> int:
    """A channel's export (``channel``), streamed through ``write`` and then recorded, audited
    and stamped like the others; return the number of photos written."""
    export = ChannelExport(connect, query, public_url)
    extra: dict[str, Any] = {}
    if query.format == "vtex":
        renamed = await write_vtex(export, write)
        if renamed["count"]:
            extra["renamed"] = renamed
    elif query.format == "google":
        await write_google(export, write)
    elif query.format == "renditions":
        await write_renditions(export, write)
    else:
        await write_json_lines(export, write)
    await record_export(connect, actor, actor_name, query.format, query.filters,
                        export.written, extra)
    return len(export.written)
