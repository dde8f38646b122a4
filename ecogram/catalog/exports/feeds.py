"""The channel feeds written as rows arrive: Google's supplemental TSV, Mercado Livre's and
Nuvemshop's JSON lines, and the renditions CSV of any channel (docs/channels.md, "Exports").

With ``include_not_ready`` each product (each row of the per-photo formats) also says ``ready``
and names its ``findings`` (codes; ``;``-separated in a text cell).
"""

from __future__ import annotations

import csv
import json
from typing import Any

from ecogram.catalog.exports.channel import ChannelExport, Photo, Product
from ecogram.catalog.exports.formats import Write, _Buffer, alt_text, neutralise

GOOGLE_HEADER = ["id", "image_link", "additional_image_link"]
RENDITIONS_HEADER = ["code", "product", "position", "url", "alt", "width", "height", "bytes"]
REVIEW_COLUMNS = ["ready", "findings"]  # added with include_not_ready


def _review(ready: bool, findings: list[str]) -> list[str]:
    return ["true" if ready else "false", ";".join(findings)]


async def write_google(export: ChannelExport, write: Write) -> None:
    """Merchant Center supplemental feed: ``id`` (the product's id on the channel, else its
    code), ``image_link`` (the first photo) and ``additional_image_link`` (up to 10 more,
    comma-separated: the URLs' own commas are %2C already). Cells are left as they are (a feed
    for Google, not a sheet for people: a leading ``'`` would change the id)."""
    review = export.query.include_not_ready
    buffer = _Buffer(write)
    writer = csv.writer(buffer.text, delimiter="\t", lineterminator="\n")
    writer.writerow(GOOGLE_HEADER + (REVIEW_COLUMNS if review else []))
    async for product in export.products():
        urls = [photo.url for photo in product.photos]
        cells = [product.external_id or product.code, urls[0], ",".join(urls[1:])]
        if review:
            cells += _review(product.ready, product.findings)
        writer.writerow(cells)
        await buffer.maybe_flush()
    await buffer.maybe_flush(force=True)


def _mercadolivre(product: Product) -> dict[str, Any]:
    return {"code": product.code, "item_id": product.external_id,
            "pictures": [{"source": photo.url} for photo in product.photos]}


def _nuvemshop(product: Product) -> dict[str, Any]:
    return {"code": product.code, "product_id": product.external_id,
            "images": [{"src": photo.url, "position": photo.rank, "alt": alt_text(photo.row)}
                       for photo in product.photos]}


async def write_json_lines(export: ChannelExport, write: Write) -> None:
    """One JSON object a line, one line a product: Mercado Livre's ``pictures`` of the item
    (``item_id``), Nuvemshop's ``images`` of the product (``product_id``)."""
    shape = _mercadolivre if export.query.format == "mercadolivre" else _nuvemshop
    buffer = _Buffer(write)
    async for product in export.products():
        line = shape(product)
        if export.query.include_not_ready:
            line.update(ready=product.ready, findings=product.findings)
        buffer.text.write(json.dumps(line, ensure_ascii=False) + "\n")
        await buffer.maybe_flush()
    await buffer.maybe_flush(force=True)


def _rendition_row(product: Product, photo: Photo) -> list[Any]:
    width, height = photo.size or ("", "")
    # bytes: only known once rendered; an export never renders (channel.py's docstring).
    return [product.code, product.name, photo.row["position"], photo.url, alt_text(photo.row),
            width, height, ""]


async def write_renditions(export: ChannelExport, write: Write) -> None:
    """Every photo's rendition for the channel: its URL, alt text and planned size. Cells are
    neutralised as in the shop CSVs (people open this one in a spreadsheet)."""
    review = export.query.include_not_ready
    buffer = _Buffer(write)
    writer = csv.writer(buffer.text, lineterminator="\r\n")
    writer.writerow(RENDITIONS_HEADER + (REVIEW_COLUMNS if review else []))
    async for product in export.products():
        for photo in product.photos:
            cells = _rendition_row(product, photo)
            if review:
                cells += _review(product.ready, photo.findings)
            writer.writerow([neutralise(cell) for cell in cells])
        await buffer.maybe_flush()
    await buffer.maybe_flush(force=True)
