"""VTEX's images spreadsheet (.xlsx): one row per photo, in position order.

The columns are those of VTEX's image import template as its help article names them
("Importar imagens por planilha" / "Importing images from a spreadsheet", help.vtex.com,
tutorials_262, updated 2025-06-12; source: github.com/vtexdocs/help-center-content):
``URL``, ``NomeImagem``, ``TextoImagem``, ``Label``, ``IdSku``, ``CodigoreferenciaSku``. The
template file itself (a Google Sheets download) is not in the sources we could read: the
spelling of the headers is the article's.

- ``URL``: the VTEX rendition (``channel.rendition_url``).
- ``NomeImagem``: the file name, no accents, spaces or special characters: the product's
  handle (unique over the catalogue, as Shopify's) ``-{n}.{ext}``.
- ``TextoImagem``: the alt text with accents and special characters taken out (VTEX refuses
  them), never equal to ``Label``.
- ``Label``: ``foto{n}`` (1 is the main photo).
- ``IdSku``: the product's VTEX SKU id (``channel_product_ids``), a number when it is one;
  empty when there is none (VTEX requires it: load the ids first).
- ``CodigoreferenciaSku``: the product's code (VTEX's SKU reference code).

Memory stays bounded: openpyxl's write-only mode streams rows into a temporary file, and the
finished workbook is saved into another temporary file and sent from there in chunks. Rows
are appended, the workbook saved and the file read in a worker thread, never on the event loop.
The headers go out when the workbook is complete (an .xlsx is a ZIP: its directory comes last).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import unicodedata
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ecogram.catalog.exports.channel import RENDITION_EXTENSIONS, ChannelExport
from ecogram.catalog.exports.feeds import REVIEW_COLUMNS
from ecogram.catalog.exports.formats import CHUNK, Write, alt_text
from ecogram.catalog.exports.keys import ProductKeys, handle

VTEX_HEADER = ["URL", "NomeImagem", "TextoImagem", "Label", "IdSku", "CodigoreferenciaSku"]
SHEET = "Imagens"
APPEND_ROWS = 200  # rows handed to the worker thread at a time
MAX_SKU_DIGITS = 15  # a longer number would lose digits in a spreadsheet's float


def plain_text(text: str) -> str:
    """``text`` without accents or special characters: letters, digits and single spaces."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text)
                     if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9 ]+", " ", folded)).strip()


def _cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("="):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # text, never a formula
        return cell
    return value


def _sku_id(external_id: str | None) -> int | str:
    if external_id is None:
        return ""
    if external_id.isascii() and external_id.isdigit() and len(external_id) <= MAX_SKU_DIGITS:
        return int(external_id)
    return external_id


def _append(sheet: WriteOnlyWorksheet, rows: list[list[Any]]) -> None:
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])


def _save(book: Workbook, sink: IO[bytes]) -> None:
    book.save(sink)
    sink.seek(0)


async def write_vtex(export: ChannelExport, write: Write) -> dict[str, Any]:
    """Write the spreadsheet; return the renamed image names (``ProductKeys.details``)."""
    loop = asyncio.get_running_loop()
    review = export.query.include_not_ready
    ext = RENDITION_EXTENSIONS[export.query.profile.output]
    keys = ProductKeys("NomeImagem", handle, str)
    await keys.load(export.connect)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET)
    rows: list[list[Any]] = [VTEX_HEADER + (REVIEW_COLUMNS if review else [])]
    async for product in export.products():
        key = keys.of(product.code)
        for photo in product.photos:
            label = f"foto{photo.rank}"
            text = plain_text(alt_text(photo.row))
            row: list[Any] = [photo.url, f"{key}-{photo.rank}.{ext}",
                              "" if text == label else text, label,
                              _sku_id(product.external_id), product.code]
            if review:
                row += ["true" if product.ready else "false", ";".join(photo.findings)]
            rows.append(row)
        if len(rows) >= APPEND_ROWS:
            await loop.run_in_executor(None, _append, sheet, rows)
            rows = []
    with tempfile.TemporaryFile() as sink:
        if rows:
            await loop.run_in_executor(None, _append, sheet, rows)
        await loop.run_in_executor(None, _save, book, sink)
        while data := await loop.run_in_executor(None, sink.read, CHUNK):
            await write(data)
    return keys.details()
