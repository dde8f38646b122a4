"""Delivery analytics: what the storefront loads, per photo and day (docs/analytics.md).

Counted in memory on the hot path — one dict lookup and a few integer additions per /img answer,
no lock (one event loop per worker), no database write per request — and added to
``delivery_stats`` by each worker every ECOGRAM_ANALYTICS_FLUSH seconds in one
``INSERT ... ON CONFLICT DO UPDATE``, and once more when the worker stops. Counts a flush could
not write (the database away) are kept and written by the next one; beyond ``MAX_PENDING``
rows the oldest days are dropped, and the loss is logged with its size, never silently.

A row counts: requests (answers: 200 from memory, Redis or a render, and 304), bytes sent (the
bodies), hits (answers without a render for the request: memory, Redis, 304), renders and
their milliseconds (every render of the photo: a request's, or an eager one after approval).
Bytes saved against the original are reckoned at the flush: answers × the original's size −
bytes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db
from ecogram.errors import invalid

log = logging.getLogger("ecogram.analytics")

MAX_PENDING = 200_000  # (image, day) rows kept across failed flushes before the oldest go
_DAY = 86_400
# A row: [requests, bytes_sent, hits, renders, render_ms]
REQUESTS, BYTES_SENT, HITS, RENDERS, RENDER_MS = range(5)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Counts:
    """One worker's counts since its last flush, per image id (the day is the flush period's:
    a period never spans midnight UTC, see ``Flusher``)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[int, list] = {}

    def served(self, image_id: int, sent: int, tier: str) -> None:
        """One /img answer of ``sent`` body bytes from ``tier`` (memory, redis, render,
        not_modified)."""
        row = self.rows.get(image_id)
        if row is None:
            row = self.rows[image_id] = [0, 0, 0, 0, 0.0]
        row[REQUESTS] += 1
        row[BYTES_SENT] += sent
        if tier != "render":
            row[HITS] += 1

    def rendered(self, image_id: int, seconds: float) -> None:
        row = self.rows.get(image_id)
        if row is None:
            row = self.rows[image_id] = [0, 0, 0, 0, 0.0]
        row[RENDERS] += 1
        row[RENDER_MS] += seconds * 1000

    def take(self) -> dict[int, list]:
        rows, self.rows = self.rows, {}
        return rows


class NoCounts(Counts):
    """Counting off (ECOGRAM_ANALYTICS_FLUSH=0)."""

    __slots__ = ()

    def served(self, image_id: int, sent: int, tier: str) -> None:
        pass

    def rendered(self, image_id: int, seconds: float) -> None:
        pass


class Flusher:
    """Adds a worker's ``Counts`` to ``delivery_stats`` every ``interval`` seconds, at midnight
    UTC (so a period's counts belong to one day) and at ``stop``."""

    def __init__(self, pool: asyncpg.Pool, counts: Counts, interval: float,
                 *, clock=time.time) -> None:
        self.pool = pool
        self.counts = counts
        self.interval = interval
        self._clock = clock
        self.day = _today()  # the day of the period being counted
        # (image_id, day) → row, not yet written (a failed flush keeps them here)
        self.pending: dict[tuple[int, dt.date], list] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="ecogram-analytics-flush")

    async def stop(self) -> None:
        """The last flush, then no more. The loop is woken, not cancelled: a flush in progress
        finishes (a write cancelled midway would leave its counts neither written nor kept)."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        else:
            await self.flush()

    async def _run(self) -> None:
        while True:
            to_midnight = _DAY - self._clock() % _DAY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       min(self.interval, to_midnight + 0.001))
            await self.flush()
            if self._stopping.is_set():
                return

    def _collect(self) -> None:
        day, self.day = self.day, _today()
        for image_id, row in self.counts.take().items():
            kept = self.pending.get((image_id, day))
            if kept is None:
                self.pending[(image_id, day)] = row
            else:
                for i, value in enumerate(row):
                    kept[i] += value
        if len(self.pending) > MAX_PENDING:
            keys = sorted(self.pending, key=lambda key: key[1])[: len(self.pending) - MAX_PENDING]
            lost = sum(self.pending.pop(key)[REQUESTS] for key in keys)
            log.warning(json.dumps({"event": "analytics_dropped", "rows": len(keys),
                                    "requests": lost}))

    async def flush(self) -> bool:
        """Write what was counted; False (the counts kept for the next flush) when the
        database could not take it. Never raises but for cancellation."""
        self._collect()
        if not self.pending:
            return True
        rows = self.pending
        self.pending = {}
        try:
            async with self.pool.acquire() as conn:
                await db.queries.analytics_add(
                    conn,
                    image_ids=[key[0] for key in rows],
                    days=[key[1] for key in rows],
                    requests=[row[REQUESTS] for row in rows.values()],
                    bytes_sent=[row[BYTES_SENT] for row in rows.values()],
                    hits=[row[HITS] for row in rows.values()],
                    renders=[row[RENDERS] for row in rows.values()],
                    render_ms=[row[RENDER_MS] for row in rows.values()],
                )
        except Exception as exc:  # the database away, or anything else: keep, retry, log
            self._keep(rows)
            log.warning(json.dumps({"event": "analytics_flush_failed",
                                    "error": type(exc).__name__, "rows": len(self.pending)}))
            return False
        return True

    def _keep(self, rows: dict[tuple[int, dt.date], list]) -> None:
        for key, row in rows.items():
            kept = self.pending.get(key)
            if kept is None:
                self.pending[key] = row
            else:
                for i, value in enumerate(row):
                    kept[i] += value


# --- the report -----------------------------------------------------------------------------

SORTS = ("requests", "bytes_sent", "bytes_saved", "bytes_per_request", "renders", "render_ms",
         "code")
GROUPS = ("photo", "product")
MAX_PAGE = 10_000
MAX_PER_PAGE = 200
MAX_CODES = 100


@dataclass(frozen=True, slots=True)
class Query:
    since: dt.date
    until: dt.date  # exclusive
    codes: Sequence[str] | None = None
    group: str = "photo"
    sort: str = "-requests"
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        problems = {}
        if self.sort.lstrip("-") not in SORTS or self.sort.startswith("--"):
            problems["sort"] = "one of " + ", ".join(SORTS) + " (- for descending)"
        if self.group not in GROUPS:
            problems["group"] = "photo or product"
        if not 1 <= self.page <= MAX_PAGE:
            problems["page"] = f"from 1 to {MAX_PAGE}"
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            problems["per_page"] = f"from 1 to {MAX_PER_PAGE}"
        if self.codes is not None and len(self.codes) > MAX_CODES:
            problems["code"] = f"at most {MAX_CODES} codes"
        if problems:
            raise invalid("Some query parameters are not acceptable.", fields=problems)

    @classmethod
    def of(cls, since: dt.datetime | None, until: dt.datetime | None, **kwargs: Any) -> Query:
        """Days from the instants asked (UTC); by default the last seven days, today included.
        ``until`` is exclusive: the days before it."""
        last = (until.astimezone(dt.UTC).date() if until is not None
                else _today() + dt.timedelta(days=1))
        first = (since.astimezone(dt.UTC).date() if since is not None
                 else last - dt.timedelta(days=7))
        return cls(since=first, until=last, **kwargs)


def _figures(row: Mapping[str, Any]) -> dict[str, Any]:
    requests = int(row["requests"])
    renders = int(row["renders"])
    return {
        "requests": requests,
        "bytes_sent": int(row["bytes_sent"]),
        "bytes_saved": int(row["bytes_saved"]),
        "bytes_per_request": round(int(row["bytes_sent"]) / requests, 1) if requests else None,
        "hits": int(row["hits"]),
        "hit_ratio": round(int(row["hits"]) / requests, 4) if requests else None,
        "renders": renders,
        "render_ms": round(float(row["render_ms"]), 1),
        "render_ms_avg": round(float(row["render_ms"]) / renders, 1) if renders else None,
    }


async def report(conn: asyncpg.Connection, query: Query) -> dict[str, Any]:
    """Rows per photo (or product) for one page, the totals and the figures per day."""
    descending = query.sort.startswith("-")
    sort = query.sort.lstrip("-")
    codes = list(query.codes) if query.codes else None
    rows = [row async for row in db.queries.analytics_rows(
        conn, group=query.group, since=query.since, until=query.until, codes=codes,
        sort=sort, descending=descending, limit=query.per_page,
        offset=(query.page - 1) * query.per_page,
    )]
    days = [row async for row in db.queries.analytics_days(
        conn, since=query.since, until=query.until, codes=codes)]
    items = []
    for row in rows:
        item: dict[str, Any] = {"code": row["code"]}
        if query.group == "photo":
            item["image_id"] = row["image_id"]
            item["position"] = row["position"]
        item.update(_figures(row))
        items.append(item)
    zero = {"requests": 0, "bytes_sent": 0, "bytes_saved": 0, "hits": 0, "renders": 0,
            "render_ms": 0.0}
    totals = dict(zero)
    for day in days:
        for name in zero:
            totals[name] += day[name]
    total = rows[0]["total"] if rows else 0
    if not rows and query.page > 1:  # past the last page: count without a page
        probe = [row async for row in db.queries.analytics_rows(
            conn, group=query.group, since=query.since, until=query.until, codes=codes,
            sort=sort, descending=descending, limit=1, offset=0)]
        total = probe[0]["total"] if probe else 0
    return {
        "since": query.since.isoformat(),
        "until": query.until.isoformat(),
        "group": query.group,
        "items": items,
        "page": query.page,
        "per_page": query.per_page,
        "total": total,
        "totals": _figures(totals),
        "days": [{"day": day["day"].isoformat(), **_figures(day)} for day in days],
    }


async def week_panel(conn: asyncpg.Connection, top: int = 5) -> dict[str, Any]:
    """The dashboard's delivery panel: the last seven days (today included) — the most-served
    and the heaviest photos (bytes per request), the totals and the figures per day."""
    served = await report(conn, Query.of(None, None, sort="-requests", per_page=top))
    heaviest = await report(conn, Query.of(None, None, sort="-bytes_per_request", per_page=top))
    return {"most_served": served["items"], "heaviest": heaviest["items"],
            "totals": served["totals"],
            "days": [{**day, "day": dt.date.fromisoformat(day["day"])} for day in served["days"]]}
