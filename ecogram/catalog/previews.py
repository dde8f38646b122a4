"""Staff previews: any live photo (pending and rejected ones too) at a few fixed widths.

``/img`` serves approved photos only, so the admin pages show thumbnails through this use case
(``GET /admin/images/{id}/preview?w=``, viewer and up). It renders from the stored master with
the same pipeline as ``/img``, in the libvips thread pool, as WebP (every browser staff use reads
it). Widths are a short fixed list, so a page cannot ask for thousands of distinct renders; the
last renders are kept in a small in-process LRU keyed by (id, version, width) — a new version
(the photo replaced) never hits an old entry.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass

import asyncpg

from ecogram import db, storage
from ecogram.errors import AppError, not_found
from ecogram.imaging.options import RenderOptions
from ecogram.imaging.pipeline import render

WIDTHS = (160, 320, 640, 1024, 1600)
FORMAT = "webp"
CONTENT_TYPE = "image/webp"
CACHE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Preview:
    data: bytes
    content_type: str
    version: int
    width: int
    height: int


class _Lru:
    """Bytes-bounded LRU of rendered previews (one per application)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.items: OrderedDict[tuple[int, int, int], Preview] = OrderedDict()

    def get(self, key: tuple[int, int, int]) -> Preview | None:
        found = self.items.get(key)
        if found is not None:
            self.items.move_to_end(key)
        return found

    def put(self, key: tuple[int, int, int], value: Preview) -> None:
        if len(value.data) > self.limit // 4:
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.size -= len(old.data)
        self.items[key] = value
        self.size += len(value.data)
        while self.size > self.limit:
            _key, dropped = self.items.popitem(last=False)
            self.size -= len(dropped.data)


_caches: weakref.WeakKeyDictionary[object, _Lru] = weakref.WeakKeyDictionary()


def cache_of(owner: object) -> _Lru:
    cache = _caches.get(owner)
    if cache is None:
        cache = _caches[owner] = _Lru(CACHE_BYTES)
    return cache


def check_width(width: int) -> int:
    if width not in WIDTHS:
        raise AppError(400, "invalid_parameter",
                       f"Parameter 'w' must be one of: {', '.join(map(str, WIDTHS))}.",
                       {"parameter": "w", "allowed": list(WIDTHS)})
    return width


async def preview(
    pool: asyncpg.Pool, executor: Executor, image_id: int, width: int, *, cache: _Lru | None = None
) -> Preview:
    """The photo ``image_id`` at most ``width`` pixels wide (never enlarged)."""
    check_width(width)
    async with pool.acquire() as conn:
        row = await db.queries.admin_get_master(conn, id=image_id)
    if row is None:
        raise not_found("There is no image with this id.")
    key = (image_id, row["version"], width)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    master = await storage.get(pool, row["store"], row["master_sha256"])
    loop = asyncio.get_running_loop()
    rendered = await loop.run_in_executor(
        executor, lambda: render(master, RenderOptions(width=width), FORMAT,
                                 source_width=row["master_width"],
                                 source_height=row["master_height"]))
    result = Preview(rendered.data, CONTENT_TYPE, row["version"], rendered.width,
                     rendered.height)
    if cache is not None:
        cache.put(key, result)
    return result
