"""What the admin pages show at a glance: the dashboard's figures and the review queue's order.

Read-only use cases; each takes a connection and returns plain data the pages render.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db
from ecogram.catalog import audit_trail, images

CHART_DAYS = 30


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    count: int


@dataclass(frozen=True)
class Dashboard:
    counts: dict[str, int]  # pending / approved / rejected (live photos)
    total: int
    originals_bytes: int  # what was uploaded, live photos
    stored_bytes: int  # the originals table on disk (originals + masters)
    per_day: list[DayCount]
    recent: list[dict[str, Any]] = field(default_factory=list)  # audit entries, newest first
    waiting: list[asyncpg.Record] = field(default_factory=list)  # oldest pending first

    @property
    def busiest(self) -> int:
        return max((d.count for d in self.per_day), default=0)


def _tz_name(tz: dt.tzinfo) -> str:
    """The IANA name PostgreSQL understands (zoneinfo's key), UTC otherwise."""
    return getattr(tz, "key", None) or getattr(tz, "zone", None) or "UTC"


async def dashboard(
    conn: asyncpg.Connection,
    *,
    tz: dt.tzinfo = dt.UTC,
    today: dt.date | None = None,
    days: int = CHART_DAYS,
    with_audit: bool = True,
    waiting: int = 6,
) -> Dashboard:
    """Counts by status, imports per day over ``days`` days ending ``today`` (in ``tz``),
    storage, the latest audit entries (only when ``with_audit``: the trail is for admins) and
    the oldest photos waiting for review."""
    today = today or dt.datetime.now(tz).date()
    first = today - dt.timedelta(days=days - 1)
    async with conn.transaction(readonly=True):
        counts = {status: 0 for status in images.STATUSES}
        async for row in db.queries.admin_status_counts(conn):
            counts[row["status"]] = row["count"]
        per_day = [
            DayCount(row["day"], row["count"])
            async for row in db.queries.admin_imports_per_day(
                conn, first_day=first, last_day=today, tz=_tz_name(tz))
        ]
        storage = await db.queries.admin_storage(conn)
        recent: list[dict[str, Any]] = []
        if with_audit:
            recent, _total = await audit_trail.list_entries(
                conn, audit_trail.AuditQuery(per_page=8))
    queue: list[asyncpg.Record] = []
    if waiting:
        queue, _count = await images.list_images(
            conn, images.ListQuery(status="pending", sort="imported_at", per_page=waiting))
    return Dashboard(
        counts=counts,
        total=sum(counts.values()),
        originals_bytes=storage["originals_bytes"],
        stored_bytes=storage["stored_bytes"],
        per_day=per_day,
        recent=recent,
        waiting=queue,
    )


@dataclass(frozen=True)
class QueuePlace:
    """Where a pending photo sits in the review queue (oldest first)."""

    previous_id: int | None
    next_id: int | None
    rank: int  # 1-based; 0 when the photo is not pending


async def first_pending(conn: asyncpg.Connection) -> int | None:
    row = await db.queries.admin_pending_first(conn)
    return row["id"] if row else None


async def queue_place(conn: asyncpg.Connection, row: asyncpg.Record) -> QueuePlace:
    """The photos before and after ``row`` in the queue (they need not be adjacent to a
    photo that has meanwhile left the queue: the keyset works from its import time)."""
    key = {"imported_at": row["imported_at"], "id": row["id"]}
    async with conn.transaction(readonly=True):
        previous = await db.queries.admin_pending_prev(conn, **key)
        following = await db.queries.admin_pending_next(conn, **key)
        rank = await db.queries.admin_pending_rank(conn, **key) if row["status"] == "pending" \
            else 0
    return QueuePlace(previous["id"] if previous else None,
                      following["id"] if following else None, rank)
