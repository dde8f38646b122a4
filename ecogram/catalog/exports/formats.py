"""The CSV formats (Shopify, WooCommerce, Magento) and the JSON feed, written as rows arrive."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import asyncpg

from ecogram.catalog.exports.keys import ProductKeys
from ecogram.catalog.exports.walk import Walk
from ecogram.catalog.records import image_urls

Write = Callable[[bytes], Awaitable[None]]

SHOPIFY_HEADER = ["Handle", "Title", "Image Src", "Image Position", "Image Alt Text"]
WOOCOMMERCE_HEADER = ["SKU", "Name", "Images"]
MAGENTO_HEADER = ["sku", "base_image", "base_image_label", "small_image", "small_image_label",
                  "thumbnail_image", "thumbnail_image_label", "additional_images",
                  "additional_image_labels"]
MAX_ALT = 512
CHUNK = 64 * 1024


def neutralise(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def alt_text(row: asyncpg.Record) -> str:
    return (row["alt"] or row["product"] or row["code"])[:MAX_ALT]


def image_url(row: asyncpg.Record, public_url: str) -> str:
    return image_urls(row["code"], row["position"], row["version"], row["width"],
                      public_url)["src"]


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


async def send(write: Write, data: bytes) -> None:
    """``data`` in chunks, so a slow client's socket buffers at most one chunk of it."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        await write(view[start:start + CHUNK])


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


async def write_csv(fmt: str, walk: Walk, keys: ProductKeys, public_url: str,
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


async def write_json(walk: Walk, public_url: str, write: Write) -> None:
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
