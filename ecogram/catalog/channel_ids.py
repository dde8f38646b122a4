"""A product's own id on a sales channel: the VTEX SKU id, the Mercado Livre item id, the
Nuvemshop product id, or a Merchant Center id other than the code (table
``channel_product_ids``). Products are matched by code; the channel exports fill these ids in
where a row exists (docs/channels.md, "Exports").

Set one at a time (``put``, ``delete``) or a CSV at once (``parse_csv`` then ``import_rows``:
``code,external_id``; an empty id removes the code's). Every change is audited.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import audit
from ecogram.errors import AppError, invalid

MAX_CODE = 200  # as /img and the exports take codes
MAX_EXTERNAL_ID = 200
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 100_000
MAX_LISTED_ERRORS = 20
MAX_PER_PAGE = 100
CSV_HEADER = ["code", "external_id"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_code(code: str | None, field: str = "code") -> str:
    code = (code or "").strip()
    if not code or len(code) > MAX_CODE or _CONTROL.search(code):
        raise invalid("The product code is not acceptable.",
                      fields={field: f"1 to {MAX_CODE} characters, no control characters"})
    return code


def check_external_id(value: Any, field: str = "external_id") -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_EXTERNAL_ID \
            or _CONTROL.search(value):
        raise invalid("The product's id on the channel is not acceptable.",
                      fields={field: f"text, 1 to {MAX_EXTERNAL_ID} characters, no control "
                                     "characters"})
    return value.strip()


def record(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {"channel": row["channel"], "code": row["code"], "external_id": row["external_id"],
            "updated_at": row["updated_at"].isoformat()}


async def get(conn: asyncpg.Connection, channel: str, code: str) -> dict[str, Any]:
    row = await db.queries.channel_id_get(conn, channel=channel, code=check_code(code))
    if row is None:
        raise AppError(404, "not_found", "This product has no id on this channel.",
                       {"channel": channel, "code": code})
    return record(row)


async def list_ids(conn: asyncpg.Connection, channel: str, codes: tuple[str, ...] | None,
                   page: int, per_page: int) -> dict[str, Any]:
    problems = {}
    if not 1 <= page <= 100_000:
        problems["page"] = "from 1 to 100000"
    if not 1 <= per_page <= MAX_PER_PAGE:
        problems["per_page"] = f"from 1 to {MAX_PER_PAGE}"
    if codes and any(_CONTROL.search(c) for c in codes):
        problems["code"] = "no control characters"
    if problems:
        raise invalid("Some query parameters are not acceptable.", fields=problems)
    rows = [r async for r in db.queries.channel_id_list(
        conn, channel=channel, codes=list(codes) if codes else None, limit=per_page,
        offset=(page - 1) * per_page)]
    return {"channel": channel, "items": [record(r) for r in rows],
            "total": rows[0]["total"] if rows else 0, "page": page, "per_page": per_page}


async def put(conn: asyncpg.Connection, actor: Identity, channel: str, code: str,
              external_id: Any) -> dict[str, Any]:
    code, external_id = check_code(code), check_external_id(external_id)
    async with conn.transaction():
        row = await db.queries.channel_id_put(conn, channel=channel, code=code,
                                              external_id=external_id)
        if row["previous"] != external_id:
            await audit.record(conn, actor, "channel_id.set", target=f"{channel}:{code}",
                               details={"channel": channel, "code": code, "external_id": {
                                   "before": row["previous"], "after": external_id}})
    return record(row)


async def delete(conn: asyncpg.Connection, actor: Identity, channel: str, code: str) -> None:
    code = check_code(code)
    async with conn.transaction():
        row = await db.queries.channel_id_delete(conn, channel=channel, code=code)
        if row is None:
            raise AppError(404, "not_found", "This product has no id on this channel.",
                           {"channel": channel, "code": code})
        await audit.record(conn, actor, "channel_id.removed", target=f"{channel}:{code}",
                           details={"channel": channel, "code": code,
                                    "external_id": {"before": row["external_id"],
                                                    "after": None}})


def parse_csv(data: bytes) -> list[tuple[str, str]]:
    """``code,external_id`` rows (a header line first; UTF-8, a BOM allowed); an empty
    external_id removes the code's id. 422 listing the bad lines (the first 20) otherwise."""
    if len(data) > MAX_CSV_BYTES:
        raise AppError(413, "too_large", "The CSV is too large.", {"limit": MAX_CSV_BYTES})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("The CSV is not UTF-8 text.", fields={"file": "UTF-8 CSV"}) from None
    if "\x00" in text:
        raise invalid("The CSV contains a NUL character.", fields={"file": "no NUL"})
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
    except csv.Error:
        header = []
    if header != CSV_HEADER:
        raise invalid("The CSV must start with the header line code,external_id.",
                      fields={"file": "header: code,external_id"})
    rows: list[tuple[str, str]] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_CSV_ROWS:
                raise AppError(413, "too_large", f"The CSV has more than {MAX_CSV_ROWS} rows.",
                               {"limit": MAX_CSV_ROWS})
            problem = None
            code = ext = ""
            if len(cells) != 2:
                problem = "expected 2 cells: code,external_id"
            else:
                code, ext = cells[0].strip(), cells[1].strip()
                if not code or len(code) > MAX_CODE or _CONTROL.search(code):
                    problem = f"code: 1 to {MAX_CODE} characters, no control characters"
                elif len(ext) > MAX_EXTERNAL_ID or _CONTROL.search(ext):
                    problem = (f"external_id: at most {MAX_EXTERNAL_ID} characters, no control "
                               "characters")
                elif code in seen:
                    problem = f"code {code!r} is already on line {seen[code]}"
            if problem:
                errors.append({"line": line, "error": problem})
                continue
            seen[code] = line
            rows.append((code, ext))
    except csv.Error:
        errors.append({"line": reader.line_num, "error": "not valid CSV"})
    if errors:
        raise AppError(422, "invalid_fields", "Some lines of the CSV are not acceptable; "
                       "nothing was imported.",
                       {"fields": {"file": f"{len(errors)} bad lines"}, "count": len(errors),
                        "lines": errors[:MAX_LISTED_ERRORS]})
    return rows


async def import_rows(conn: asyncpg.Connection, actor: Identity, channel: str,
                      rows: list[tuple[str, str]]) -> dict[str, Any]:
    """All the rows in one transaction: ids set (new or changed), unchanged and removed."""
    async with conn.transaction():
        counts = await db.queries.channel_id_import(
            conn, channel=channel, codes=[r[0] for r in rows], ids=[r[1] for r in rows])
        result = {"channel": channel, "rows": len(rows), "set": counts["set"],
                  "unchanged": counts["unchanged"], "removed": counts["removed"]}
        await audit.record(conn, actor, "channel_ids.imported", target=channel,
                           details=result)
    return result
