"""Sales channels: each product's readiness for a channel, and the photo geometry it reads.

**Readiness** (``readiness``) is computed in SQL (``sql/queries/channels.sql``) from facts stored
per photo — width, height, format and bytes on ``images``; background class, fill and the
product's box in ``image_geometry`` — against one channel profile (``ecogram.channels``). Each
finding is one bit of a mask; ``FINDINGS`` says which bit is which, whether the channel
rendition fixes it (``fixable``: it scales, pads to a square, whitens a near-white background,
trims the margin, re-encodes) and the sentence that explains it, in English and Portuguese. A
product is ready when every finding of it and of its counted photos is fixable. Only approved
photos count unless the query's ``status`` says otherwise; the main photo is the first counted
one by position.

**Geometry** (``measure_one``, ``backfill``, ``GeometryRecorder``) comes from
``ecogram.imaging.product.measure`` run on the original in the libvips executor: for each photo
approved or changed (the application's hooks) and, for photos from before, by
``ecogram channels backfill``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import asyncpg
from babel import numbers as babel_numbers

from ecogram import db, storage
from ecogram.channels import Profile
from ecogram.errors import AppError, invalid
from ecogram.imaging.probe import QCLimits
from ecogram.imaging.product import Geometry, measure

log = logging.getLogger("ecogram.channels")

STATUSES = ("approved", "pending", "rejected", "all")
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
MAX_CODES = 500
MAX_TEXT = 200
LANGUAGES = ("en", "pt_BR")


@dataclass(frozen=True)
class Finding:
    code: str
    bit: int  # the bit sql/queries/channels.sql sets for it
    fixable: bool  # the channel rendition fixes it


# The order is the order findings are listed in. Keep the bits in step with channels-readiness.
FINDINGS: tuple[Finding, ...] = (
    Finding("too_small", 1, False),
    Finding("too_large", 2, True),
    Finding("too_many_pixels", 4, True),
    Finding("not_square", 8, True),
    Finding("wrong_format", 16, True),
    Finding("file_too_large", 32, True),
    Finding("file_too_small", 64, False),
    Finding("not_measured", 2048, False),
    Finding("background_near_white", 128, True),
    Finding("background_not_white", 256, False),
    Finding("low_fill", 512, True),
    Finding("too_few_photos", 4096, False),
    Finding("too_many_photos", 8192, False),
)
FIXABLE_MASK = sum(f.bit for f in FINDINGS if f.fixable)
PRODUCT_CODES = ("too_few_photos", "too_many_photos")

# One sentence per finding and language; {fields} come from the photo, the product and the
# profile (see _facts). Kept here rather than in the .po catalogues: the API has no template.
MESSAGES: dict[tuple[str, str], str] = {
    ("too_small", "en"): "The photo is {width} × {height} px; {channel} needs at least "
                         "{min_side} px{side_rule}.",
    ("too_small", "pt_BR"): "A foto tem {width} × {height} px; {channel} exige pelo menos "
                            "{min_side} px{side_rule}.",
    ("too_large", "en"): "The photo is {width} × {height} px, larger than {channel}'s "
                         "{max_side} px: the rendition scales it down.",
    ("too_large", "pt_BR"): "A foto tem {width} × {height} px, mais que os {max_side} px de "
                            "{channel}: a versão do canal a reduz.",
    ("too_many_pixels", "en"): "The photo has {pixels} pixels, more than {channel}'s "
                               "{max_pixels}: the rendition scales it down.",
    ("too_many_pixels", "pt_BR"): "A foto tem {pixels} pixels, mais que os {max_pixels} de "
                                  "{channel}: a versão do canal a reduz.",
    ("not_square", "en"): "The photo is {width} × {height} px, not square: the rendition pads "
                          "it to a square.",
    ("not_square", "pt_BR"): "A foto tem {width} × {height} px e não é quadrada: a versão do "
                             "canal completa o quadrado.",
    ("wrong_format", "en"): "{channel} does not take {format}: the rendition is {output}.",
    ("wrong_format", "pt_BR"): "{channel} não aceita {format}: a versão do canal é {output}.",
    ("file_too_large", "en"): "The file is {size}, more than {channel}'s {max_bytes}: the "
                              "rendition is encoded smaller.",
    ("file_too_large", "pt_BR"): "O arquivo tem {size}, mais que os {max_bytes} de {channel}: "
                                 "a versão do canal é codificada menor.",
    ("file_too_small", "en"): "The file is {size}, less than the {min_bytes} {channel} asks "
                              "for.",
    ("file_too_small", "pt_BR"): "O arquivo tem {size}, menos que os {min_bytes} que {channel} "
                                 "exige.",
    ("not_measured", "en"): "The main photo's background and framing have not been measured "
                            "yet (ecogram channels backfill).",
    ("not_measured", "pt_BR"): "O fundo e o enquadramento da foto principal ainda não foram "
                               "medidos (ecogram channels backfill).",
    ("background_near_white", "en"): "The main photo's background is almost white: the "
                                     "rendition makes it pure white, as {channel} requires.",
    ("background_near_white", "pt_BR"): "O fundo da foto principal é quase branco: a versão "
                                        "do canal o deixa branco puro, como {channel} exige.",
    ("background_not_white", "en"): "{channel} requires a pure white background on the main "
                                    "photo, and this one is not on white.",
    ("background_not_white", "pt_BR"): "{channel} exige fundo branco puro na foto principal, e "
                                       "esta não tem fundo branco.",
    ("low_fill", "en"): "The product fills {fill} % of the frame, less than {channel}'s "
                        "{needed} %: the rendition trims the margin.",
    ("low_fill", "pt_BR"): "O produto ocupa {fill} % do quadro, menos que os {needed} % de "
                           "{channel}: a versão do canal corta a margem.",
    ("too_few_photos", "en"): "The product has {photos} photos that count here; {channel} "
                              "needs at least {min_photos}.",
    ("too_few_photos", "pt_BR"): "O produto tem {photos} fotos que contam aqui; {channel} "
                                 "exige pelo menos {min_photos}.",
    ("too_many_photos", "en"): "The product has {photos} photos; {channel} takes at most "
                               "{max_photos}: remove or reject some.",
    ("too_many_photos", "pt_BR"): "O produto tem {photos} fotos; {channel} aceita no máximo "
                                  "{max_photos}: remova ou rejeite algumas.",
}
_SIDE_RULE = {("en", True): " on the long side", ("en", False): " on the short side",
              ("pt_BR", True): " no lado maior", ("pt_BR", False): " no lado menor"}


@dataclass(frozen=True)
class ReadinessQuery:
    codes: tuple[str, ...] | None = None
    q: str | None = None  # text in the product code or name (the admin board's filter)
    status: str = "approved"  # which photos count: approved, pending, rejected or all
    ready: bool | None = None
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.status not in STATUSES:
            problems["status"] = f"one of {', '.join(STATUSES)}"
        if self.codes and len(self.codes) > MAX_CODES:
            problems["code"] = f"at most {MAX_CODES} codes"
        elif self.codes and any("\x00" in code for code in self.codes):
            problems["code"] = "no NUL characters"
        if self.q is not None and (len(self.q) > MAX_TEXT or "\x00" in self.q):
            problems["q"] = f"at most {MAX_TEXT} characters, no NUL"
        if not 1 <= self.page <= MAX_PAGE:
            problems["page"] = f"from 1 to {MAX_PAGE}"
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            problems["per_page"] = f"from 1 to {MAX_PER_PAGE}"
        if problems:
            raise invalid("Some query parameters are not acceptable.", fields=problems)


@functools.lru_cache(maxsize=4)
def _symbols(lang: str) -> tuple[str, str]:
    """The language's (group, decimal) symbols, from Babel's CLDR data, looked up once."""
    return (babel_numbers.get_group_symbol(lang), babel_numbers.get_decimal_symbol(lang))


def _number(value: float, lang: str, decimals: int = 0) -> str:
    """1,234 / 1.234 and 2.5 / 2,5: a page formats thousands of these, so not through Babel's
    pattern engine (a test compares the two)."""
    group, point = _symbols(lang)
    text = f"{value:,.{decimals}f}"
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", "\x00").replace(".", point).replace("\x00", group)


def _bytes(value: int, lang: str) -> str:
    """Bytes as kB/MB in powers of 1000 (as the channels state their limits)."""
    if value < 1000:
        return f"{_number(value, lang)} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if value < scale * 1000 or unit == "GB":
            return f"{_number(value / scale, lang, 1)} {unit}"
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=64)
def _profile_facts(profile: Profile, lang: str) -> dict[str, str]:
    def num(value: float | None) -> str:
        return "" if value is None else _number(value, lang)

    return {
        "channel": profile.name, "min_side": num(profile.min_side),
        "max_side": num(profile.max_side), "max_pixels": num(profile.max_pixels),
        "max_bytes": _bytes(profile.max_bytes, lang) if profile.max_bytes else "",
        "min_bytes": _bytes(profile.min_bytes, lang) if profile.min_bytes else "",
        "needed": num(round((profile.fill or 0) * 100)), "output": profile.output.upper(),
        "min_photos": num(profile.min_photos), "max_photos": num(profile.max_photos),
        "side_rule": _SIDE_RULE[lang, profile.square],
    }


def _facts(profile: Profile, lang: str, photo: dict[str, Any] | None,
           photos: int) -> dict[str, str]:
    facts = {**_profile_facts(profile, lang), "photos": _number(photos, lang)}
    if photo is not None:
        facts.update(
            width=_number(photo["width"], lang), height=_number(photo["height"], lang),
            pixels=_number(photo["width"] * photo["height"], lang),
            format=photo["format"].upper(), size=_bytes(photo["file_size"], lang),
            fill=_number(int((photo["fill"] or 0) * 100), lang),  # down: 84.6 % is not 85 %
        )
    return facts


def findings(mask: int, profile: Profile, lang: str, *, photo: dict[str, Any] | None = None,
             photos: int = 0, codes: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The findings a mask holds, each ``{code, message, fixable}`` in ``lang``."""
    wanted = set(codes) if codes is not None else None
    facts: dict[str, str] | None = None
    out = []
    for finding in FINDINGS:
        if not mask & finding.bit or (wanted is not None and finding.code not in wanted):
            continue
        facts = facts or _facts(profile, lang, photo, photos)
        out.append({"code": finding.code,
                    "message": MESSAGES[finding.code, lang].format(**facts),
                    "fixable": finding.fixable})
    return out


def _ready(mask: int) -> bool:
    return mask & ~FIXABLE_MASK == 0


def _summary(groups: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {f.code: 0 for f in FINDINGS}
    products = ready = photos = 0
    for group in groups:
        products += group["products"]
        photos += group["photos"] or 0
        if _ready(group["mask"]):
            ready += group["products"]
        for finding in FINDINGS:
            if group["mask"] & finding.bit:
                counts[finding.code] += group["products"]
    return {"products": products, "ready": ready, "not_ready": products - ready,
            "photos": photos, "findings": {code: n for code, n in counts.items() if n}}


def _like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, the pattern characters in ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def fetch_masks(conn: asyncpg.Connection, profile: Profile,
                      query: ReadinessQuery) -> asyncpg.Record:
    """The query's row as SQL gives it: ``total``, ``summary`` and ``items`` with raw masks."""
    # The products whose photos changed since the last reader: rebuilt and committed first, in
    # a short transaction of their own (usually none, so a plain DELETE on an empty table).
    await db.queries.channels_catch_up(conn)
    async with conn.transaction(readonly=True):
        return await read_masks(conn, profile, query)


async def read_masks(conn: asyncpg.Connection, profile: Profile,
                     query: ReadinessQuery) -> asyncpg.Record:
    """``fetch_masks`` without the catch-up, in the caller's transaction (a channel export reads
    it in the snapshot of its batch, having caught up before opening it)."""
    await db.queries.manage_custom_plans(conn)
    return await db.queries.channels_readiness(
        conn,
        codes=list(query.codes) if query.codes else None,
        q=_like_pattern(query.q) if query.q else None,
        status=query.status,
        ready=query.ready,
        min_side=profile.min_side, max_side=profile.max_side,
        max_pixels=profile.max_pixels, square=profile.square,
        formats=list(profile.formats), max_bytes=profile.max_bytes,
        min_bytes=profile.min_bytes or None, white_main=profile.white_main,
        fill=profile.fill, min_photos=profile.min_photos, max_photos=profile.max_photos,
        fixable=FIXABLE_MASK,
        limit=query.per_page, offset=(query.page - 1) * query.per_page,
    )


async def readiness(conn: asyncpg.Connection, profile: Profile, query: ReadinessQuery,
                    lang: str = "en") -> dict[str, Any]:
    """One page of products with their readiness for ``profile``, and the summary."""
    lang = lang if lang in LANGUAGES else "en"
    row = await fetch_masks(conn, profile, query)
    items = []
    for product in row["items"]:
        images = [{
            "id": photo["id"], "position": photo["position"], "main": photo["main"],
            "ready": _ready(photo["mask"]),
            "findings": findings(photo["mask"], profile, lang, photo=photo),
        } for photo in product["images"]]
        items.append({
            "code": product["code"], "product": product["product"],
            "ready": _ready(product["mask"]), "photos": product["photos"],
            "findings": findings(product["mask"], profile, lang, photos=product["photos"],
                                 codes=PRODUCT_CODES),
            "images": images,
        })
    return {
        "channel": {"id": profile.id, "name": profile.name},
        "status": query.status,
        "items": items,
        "total": row["total"],
        "page": query.page,
        "per_page": query.per_page,
        "summary": _summary(row["summary"]),
    }


def profile_record(profile: Profile, enabled: Iterable[str]) -> dict[str, Any]:
    return {**profile.as_dict(), "enabled": profile.id in set(enabled)}


def find_profile(profiles: dict[str, Profile], channel: str) -> Profile:
    profile = profiles.get(channel)
    if profile is None:
        raise AppError(404, "not_found", "There is no sales channel with this id.",
                       {"channels": list(profiles)})
    return profile


# --- geometry ----------------------------------------------------------------------------------

async def _save(conn: asyncpg.Connection, image_id: int, sha256: str,
                geometry: Geometry) -> bool:
    saved = await db.queries.channels_save_geometry(
        conn, id=image_id, sha256=sha256, background=geometry.background,
        fill=min(1.0, max(0.0, geometry.fill)), box_left=geometry.bbox.left,
        box_top=geometry.bbox.top, box_width=geometry.bbox.width,
        box_height=geometry.bbox.height, border="#{:02x}{:02x}{:02x}".format(*geometry.border))
    return saved is not None


async def measure_one(pool: asyncpg.Pool, executor: Executor | None, limits: QCLimits,
                      image_id: int) -> str:
    """Measure one photo unless its current file already is: ``measured``, ``skipped`` (gone,
    already measured, or replaced meanwhile) or ``failed`` (the file cannot be decoded).

    No connection is held while libvips works."""
    async with pool.acquire() as conn:
        row = await db.queries.channels_photo_to_measure(conn, id=image_id)
    if row is None:
        return "skipped"
    loop = asyncio.get_running_loop()
    try:
        # Through the pool: an object-store read holds no connection.
        data = await storage.get(pool, row["store"], row["sha256"])
        geometry = await loop.run_in_executor(
            executor, functools.partial(measure, data, limits=limits))
    except storage.MissingObject:
        log.warning(json.dumps({"event": "geometry_failed", "image_id": image_id,
                                "code": "missing_object"}))
        return "failed"
    except AppError as error:  # a damaged file, or the object store away (StoreUnavailable)
        log.warning(json.dumps({"event": "geometry_failed", "image_id": image_id,
                                "code": error.code}))
        return "failed"
    async with pool.acquire() as conn:
        saved = await _save(conn, image_id, row["sha256"], geometry)
        # Keep the dirty list short where photos are approved but nobody opens the board.
        await db.queries.channels_catch_up(conn)
    return "measured" if saved else "skipped"


async def backfill(pool: asyncpg.Pool, executor: Executor | None, limits: QCLimits, *,
                   batch: int = 50, concurrency: int = 2,
                   on_progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Measure every live photo without geometry for its current file, in id order.

    Resumable: a run stopped half-way leaves what it measured, and the next run starts with
    what is still missing. ``concurrency`` photos are in flight at once (their originals in
    memory); ``on_progress(done, total)`` after each."""
    async with pool.acquire() as conn:
        total = await db.queries.channels_count_unmeasured(conn)
    counts = {"measured": 0, "skipped": 0, "failed": 0}
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def one(image_id: int) -> None:
        nonlocal done
        async with gate:
            outcome = await measure_one(pool, executor, limits, image_id)
        counts[outcome] += 1
        done += 1
        if on_progress:
            on_progress(done, total)

    after = 0
    while True:
        async with pool.acquire() as conn:
            ids = [r["id"] async for r in db.queries.channels_unmeasured(
                conn, after=after, limit=batch)]
        if not ids:
            return counts
        await asyncio.gather(*(one(image_id) for image_id in ids))
        after = ids[-1]  # failures stay unmeasured: never fetched again in this run


class GeometryRecorder:
    """Measures each photo the hooks announce (approved, replaced, moved), in the background.

    A hook starts a task and returns: the request that fired it never waits for libvips. The
    tasks take turns (``concurrency`` at once, one by default): a bulk approval of a thousand
    photos holds one original in memory at a time and leaves the libvips threads to /img."""

    def __init__(self, pool: asyncpg.Pool, executor: Executor | None,
                 limits: QCLimits, concurrency: int = 1) -> None:
        self.pool, self.executor, self.limits = pool, executor, limits
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(concurrency)

    async def on_event(self, image_id: int) -> None:
        task = asyncio.create_task(self._measure(image_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _measure(self, image_id: int) -> None:
        try:
            async with self._gate:
                await measure_one(self.pool, self.executor, self.limits, image_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A background task: nobody awaits it, so say it here. The backfill measures the
            # photo later; readiness says "not measured" meanwhile.
            log.exception(json.dumps({"event": "geometry_deferred", "image_id": image_id}))

    async def drain(self) -> None:
        """Wait for the measurements under way (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
