"""Managing image records: list, get, edit (with reordering), delete, purge, replace the photo.

Positions of a product code's live images are always 1..n without gaps. Every writer into a code
first takes the code's advisory lock (the same one imports take), then locks the row, so
"shift the others" never races; the exclusion constraint on (code, position) is deferred and
checks the result at commit. Each operation appends one audit entry in its own transaction and
fires the application's hooks (``ecogram.catalog.events``) only after the commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import unicodedata
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db, storage
from ecogram.auth.identity import Identity
from ecogram.auth.roles import allows
from ecogram.catalog import audit, originals
from ecogram.catalog.events import Events
from ecogram.catalog.imports import qc_limits
from ecogram.catalog.sources import CODE_RE, MAX_ALT, MAX_PRODUCT
from ecogram.errors import AppError, conflict, invalid, not_found
from ecogram.imaging.probe import Probe, inspect
from ecogram.settings import Settings

STATUSES = ("pending", "approved", "rejected")
_SORT_KEYS = ("imported_at", "code", "position", "product", "file_size", "status",
              "reviewed_at", "updated_at")
SORTS = tuple(key for name in _SORT_KEYS for key in (name, f"-{name}"))
DEFAULT_SORT = "-imported_at"
MAX_PER_PAGE = 100
MAX_PAGE = 100_000  # OFFSET beyond this is a crawl, not a person paging
MAX_CODE = 100
_LAST = 2_147_483_647  # "to the end" for position ranges
EDITABLE = ("code", "product", "position", "alt")


@dataclass(frozen=True)
class ListQuery:
    status: str | None = None
    codes: tuple[str, ...] | None = None
    q: str | None = None
    importer: str | None = None  # a user id (digits) or an importer name
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.status is not None and self.status not in STATUSES:
            problems["status"] = f"one of {', '.join(STATUSES)}"
        if self.sort not in SORTS:
            problems["sort"] = f"one of {', '.join(SORTS)}"
        if not 1 <= self.page <= MAX_PAGE:
            problems["page"] = f"from 1 to {MAX_PAGE}"
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            problems["per_page"] = f"from 1 to {MAX_PER_PAGE}"
        if self.q is not None and len(self.q) > 200:
            problems["q"] = "at most 200 characters"
        if problems:
            raise invalid("Some query parameters are not acceptable.", fields=problems)


def _like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, with the user's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filters(query: ListQuery) -> dict[str, Any]:
    importer_id = importer = None
    if query.importer:
        if query.importer.isascii() and query.importer.isdigit() and len(query.importer) < 19:
            importer_id = int(query.importer)
        else:
            importer = query.importer
    q = query.q.strip() if query.q else None
    return {
        "status": query.status,
        "codes": list(query.codes) if query.codes else None,
        "q": _like_pattern(q) if q else None,
        "importer_id": importer_id,
        "importer": importer,
        "since": query.since,
        "until": query.until,
    }


async def list_images(
    conn: asyncpg.Connection, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """One page of live image records and the total matching the filters."""
    filters = _filters(query)
    async with conn.transaction(readonly=True):
        await db.queries.manage_custom_plans(conn)
        rows = [row async for row in db.queries.manage_list_images(
            conn, **filters, sort=query.sort, limit=query.per_page,
            offset=(query.page - 1) * query.per_page,
        )]
        if query.page == 1 and len(rows) < query.per_page:
            total = len(rows)  # the whole result is on this page: no need to count
        else:
            total = await db.queries.manage_count_images(conn, **filters)
    return rows, total


async def get_image(conn: asyncpg.Connection, image_id: int) -> asyncpg.Record:
    row = await db.queries.manage_get_image(conn, id=image_id)
    if row is None:
        raise not_found("There is no image with this id.")
    return row


def etag(row: asyncpg.Record) -> str:
    """Changes whenever the record changes (edits, shifts by others' edits, reviews, replace)."""
    stamp = int(row["updated_at"].timestamp() * 1_000_000)
    return f'"{row["id"]}-{row["version"]}-{stamp}"'


@dataclass(frozen=True)
class Original:
    filename: str
    mime: str
    format: str
    data: bytes


async def get_original(conn: asyncpg.Connection, image_id: int) -> Original:
    row = await db.queries.manage_get_original(conn, id=image_id)
    if row is None:
        raise not_found("There is no image with this id.")
    data = await storage.get(conn, row["store"], row["sha256"])
    return Original(row["filename"], row["mime"], row["format"], data)


# --- editing -----------------------------------------------------------------------------------

def _clean_text(field: str, value: Any, limit: int, *, required: bool) -> str:
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string.", fields={field: "a string"})
    value = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise invalid(f"{field} contains control characters.", fields={field: "no control "
                      "characters"})
    if required and not value:
        raise invalid(f"{field} must not be empty.", fields={field: "not empty"})
    if len(value) > limit:
        raise invalid(f"{field} is too long.", fields={field: f"at most {limit} characters"})
    return value


def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The accepted edit: only known fields, each of the right type and size."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise invalid("Only code, product, position and alt can be edited.",
                      fields={name: "not editable" for name in unknown})
    clean: dict[str, Any] = {}
    if "code" in changes:
        code = _clean_text("code", changes["code"], MAX_CODE, required=True)
        if not CODE_RE.fullmatch(code):  # the import's rule: it becomes part of /img/{code}
            raise invalid("A product code cannot contain blanks, '/', '\\', '?', '#' or '%'.",
                          fields={"code": "no blanks, '/', '\\', '?', '#' or '%'"})
        clean["code"] = code
    if "product" in changes:
        clean["product"] = _clean_text("product", changes["product"], MAX_PRODUCT,
                                       required=False)
    if "alt" in changes:
        clean["alt"] = _clean_text("alt", changes["alt"], MAX_ALT, required=False)
    if "position" in changes:
        position = changes["position"]
        if isinstance(position, bool) or not isinstance(position, int) or not (
            1 <= position <= 100_000
        ):
            raise invalid("position must be a whole number from 1.",
                          fields={"position": "an integer from 1"})
        clean["position"] = position
    return clean


async def _lock_for_write(
    conn: asyncpg.Connection, image_id: int, extra_codes: tuple[str, ...] = ()
) -> asyncpg.Record:
    """Take the code lock(s), then the row lock, in that order (the order imports use).

    Codes are locked in sorted order so two edits moving photos between the same two codes
    cannot deadlock.
    """
    current = await get_image(conn, image_id)
    for code in sorted({current["code"], *extra_codes}):
        await db.queries.manage_lock_code(conn, code=code)
    row = await db.queries.manage_lock_image(conn, id=image_id)
    if row is None:
        raise not_found("There is no image with this id.")
    if row["code"] != current["code"]:
        # Moved to another code between our read and our lock: its code is not locked by us.
        raise conflict("edit_conflict", "The image was changed meanwhile; reload and retry.")
    return row


def _check_expected(row: asyncpg.Record, version: int | None, if_match: str | None) -> None:
    if version is not None and version != row["version"]:
        raise conflict("edit_conflict", "The photo was replaced since you loaded it; reload and "
                       "retry.", version=row["version"])
    if if_match is not None and if_match.strip() not in ("*", etag(row)):
        raise conflict("edit_conflict", "The record changed since you loaded it; reload and "
                       "retry.", etag=etag(row))


async def _commit_positions(conn: asyncpg.Connection) -> None:
    """Check the deferred exclusion constraint now, so a violation is a clean 409."""
    try:
        await db.queries.manage_check_positions(conn)
    except asyncpg.ExclusionViolationError:
        raise conflict("position_conflict", "Positions changed meanwhile; retry.") from None


def _editable(row: asyncpg.Record) -> dict[str, Any]:
    return {name: row[name] for name in EDITABLE}


async def edit_image(
    conn: asyncpg.Connection,
    actor: Identity,
    image_id: int,
    changes: dict[str, Any],
    *,
    version: int | None = None,
    if_match: str | None = None,
    events: Events | None = None,
) -> asyncpg.Record:
    """Change code, product, position and/or alt, keeping every code's positions 1..n.

    Moving within a code shifts the photos in between; moving to another code inserts it there
    (at ``position``, else at the end) and closes the gap it leaves. Positions beyond the end
    are clamped to the end. An approved photo whose code or product an editor below reviewer
    changes goes back to ``pending``, like a replaced file: a review approved that photo for
    that product, and an importer must not publish it under another one by renaming.
    """
    clean = validate_changes(changes)
    async with conn.transaction():
        extra = (clean["code"],) if "code" in clean else ()
        row = await _lock_for_write(conn, image_id, extra)
        _check_expected(row, version, if_match)
        before = _editable(row)
        after = {**before, **clean}
        if after == before:
            return row
        old_code, old_pos = before["code"], before["position"]
        if after["code"] == old_code:
            last = await db.queries.manage_last_position(conn, code=old_code)
            target = min(after["position"], last)
            if {**after, "position": target} == before:
                return row  # a position past the end, clamped back to where it is
            if target < old_pos:
                await db.queries.manage_shift_positions(
                    conn, code=old_code, lo=target, hi=old_pos - 1, delta=1, id=image_id)
            elif target > old_pos:
                await db.queries.manage_shift_positions(
                    conn, code=old_code, lo=old_pos + 1, hi=target, delta=-1, id=image_id)
        else:
            await db.queries.manage_shift_positions(
                conn, code=old_code, lo=old_pos + 1, hi=_LAST, delta=-1, id=image_id)
            last = await db.queries.manage_last_position(conn, code=after["code"])
            wanted = clean.get("position", last + 1)
            target = min(wanted, last + 1)
            await db.queries.manage_shift_positions(
                conn, code=after["code"], lo=target, hi=_LAST, delta=1, id=image_id)
        after["position"] = target
        to_review = _needs_review(row, before, after, actor)
        updated = await db.queries.manage_update_image(
            conn, id=image_id, to_review=to_review, **after)
        await _commit_positions(conn)
        await audit.record(conn, actor, "image.edited", image_id=image_id,
                           target=f"{updated['code']}/{updated['position']}",
                           details=audit.changes({**before, "status": row["status"]},
                                                 {**_editable(updated),
                                                  "status": updated["status"]}))
    moved = (before["code"], before["position"]) != (after["code"], after["position"])
    if events and (moved or updated["status"] != row["status"]):
        await events.changed([image_id])
    return updated


def _needs_review(
    row: asyncpg.Record, before: dict[str, Any], after: dict[str, Any], actor: Identity
) -> bool:
    """An approved photo renamed (code or product) by someone who may not approve it."""
    renamed = (before["code"], before["product"]) != (after["code"], after["product"])
    return renamed and row["status"] == "approved" and not allows(actor.role, "reviewer")


async def delete_image(
    conn: asyncpg.Connection, actor: Identity, image_id: int, *, events: Events | None = None
) -> asyncpg.Record:
    """Soft delete: the row stays (for the audit) but leaves listings, exports and /img."""
    async with conn.transaction():
        row = await _lock_for_write(conn, image_id)
        deleted = await db.queries.manage_soft_delete(conn, id=image_id)
        await db.queries.manage_shift_positions(
            conn, code=row["code"], lo=row["position"] + 1, hi=_LAST, delta=-1, id=image_id)
        await _commit_positions(conn)
        await audit.record(
            conn, actor, "image.deleted", image_id=image_id,
            target=f"{row['code']}/{row['position']}",
            details=audit.changes({"deleted_at": None},
                                  {"deleted_at": deleted["deleted_at"].isoformat()}),
        )
    if events:
        await events.changed([image_id])
    return deleted


_PURGE_SNAPSHOT = ("code", "product", "position", "status", "filename", "sha256", "file_size",
                   "importer", "version")


async def purge_image(
    conn: asyncpg.Connection, actor: Identity, image_id: int, *, events: Events | None = None
) -> asyncpg.Record:
    """Remove the row and its original for good (admin). The audit keeps what it was."""
    async with conn.transaction():
        row = await db.queries.manage_get_any_image(conn, id=image_id)
        if row is None:
            raise not_found("There is no image with this id.")
        live = row["deleted_at"] is None
        if live:
            row = await _lock_for_write(conn, image_id)
        refs = await originals.refs_of(conn, image_id)
        purged = await db.queries.manage_purge(conn, id=image_id)
        if purged is None:  # purged by someone else meanwhile
            raise not_found("There is no image with this id.")
        if live:
            await db.queries.manage_shift_positions(
                conn, code=row["code"], lo=row["position"] + 1, hi=_LAST, delta=-1,
                id=image_id)
            await _commit_positions(conn)
        snapshot = {name: purged[name] for name in _PURGE_SNAPSHOT}
        await audit.record(
            conn, actor, "image.purged", image_id=image_id,
            target=f"{row['code']}/{row['position']}",
            details=audit.changes(snapshot, dict.fromkeys(snapshot)),
        )
    if refs is not None:  # its objects, unless another record names them too
        await originals.release(conn, refs["store"], originals.keys_of(refs))
    if events:
        await events.changed([image_id])
    return purged


# --- replacing the photo -------------------------------------------------------------------------

async def _qc_with_neighbours(
    conn: asyncpg.Connection, row: asyncpg.Record, checked: Probe, settings: Settings
) -> dict[str, Any]:
    """The probe's findings plus the import's database checks, this record left out."""
    qc = checked.qc
    warnings = list(qc.get("warnings", []))
    elsewhere = await db.queries.manage_find_same_bytes_elsewhere(
        conn, sha256=checked.sha256, code=row["code"])
    if elsewhere is not None:
        warnings.append({
            "code": "same_image_elsewhere",
            "message": f"The same file is already image {elsewhere['id']} of product "
                       f"{elsewhere['code']} (position {elsewhere['position']}).",
            "image_id": elsewhere["id"],
        })
    near = await db.queries.manage_find_near_duplicate(
        conn, code=row["code"], phash=checked.phash, id=row["id"],
        max_distance=settings.near_duplicate_distance)
    if near is not None:
        warnings.append({
            "code": "near_duplicate",
            "message": f"This looks like image {near['id']} of the same product (position "
                       f"{near['position']}; {near['distance']} of 64 bits differ).",
            "image_id": near["id"],
            "distance": near["distance"],
        })
    return {**qc, "warnings": warnings}


_REPLACED = ("filename", "format", "width", "height", "file_size", "sha256", "status",
             "version")


async def replace_file(
    conn: asyncpg.Connection,
    actor: Identity,
    image_id: int,
    data: bytes,
    filename: str,
    settings: Settings,
    executor: Executor | None = None,
    *,
    events: Events | None = None,
) -> asyncpg.Record:
    """A new photo for the same record: same checks as import, new version, back to pending."""
    await get_image(conn, image_id)  # 404 before spending a decode on a missing record
    loop = asyncio.get_running_loop()
    # The import's checks, from one decode: type, integrity, limits, resolution, QC findings.
    checked, master = await loop.run_in_executor(
        executor, inspect, data, qc_limits(settings), settings.master_side
    )
    master_sha256 = await loop.run_in_executor(
        executor, lambda: hashlib.sha256(master.data).hexdigest())
    filename = _clean_text("filename", filename or "upload", 255, required=True)
    async with conn.transaction():
        row = await _lock_for_write(conn, image_id)
        same = await db.queries.manage_find_same_bytes(
            conn, code=row["code"], sha256=checked.sha256, id=image_id)
        if same is not None:
            raise AppError(409, "duplicate", "This product already has this exact photo.",
                           {"existing_id": same})
        qc = await _qc_with_neighbours(conn, row, checked, settings)
        old = await originals.refs_of(conn, image_id)  # the objects of the photo replaced
        updated = await db.queries.manage_replace_image(
            conn, id=image_id, filename=filename, format=checked.format, mime=checked.mime,
            width=checked.width, height=checked.height, file_size=checked.file_size,
            sha256=checked.sha256, phash=checked.phash, blurhash=checked.blurhash,
            color=checked.color, has_alpha=checked.has_alpha, qc=qc,
        )
        # The new objects first, then the record that names them (ecogram.storage).
        where = settings.storage_url
        await storage.put(conn, where, checked.sha256, data)
        await storage.put(conn, where, master_sha256, master.data)
        await db.queries.manage_replace_original(
            conn, image_id=image_id, store=where, master_sha256=master_sha256,
            master_format=master.format, master_width=master.width,
            master_height=master.height,
        )
        await audit.record(
            conn, actor, "image.replaced", image_id=image_id,
            target=f"{row['code']}/{row['position']}",
            details=audit.changes({k: row[k] for k in _REPLACED},
                                  {k: updated[k] for k in _REPLACED}),
        )
    if old is not None:  # the old photo's objects, unless a record still names them
        await originals.release(conn, old["store"], originals.keys_of(old))
    if events:
        await events.changed([image_id])
    return updated

