"""catalog.analytics' flusher: the day a count belongs to, and counts kept (bounded, never
silently dropped) while the database cannot take them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket

import asyncpg

from ecogram import db
from ecogram.catalog import analytics
from tests.catalog.photos import make_photo


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once closed


async def test_a_flush_the_database_refuses_keeps_the_counts_bounded_and_says_what_it_drops(
    monkeypatch, caplog
):
    pool = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/none", min_size=0, max_size=1,
        timeout=2)
    try:
        counts = analytics.Counts()
        flusher = analytics.Flusher(pool, counts, 10)
        monkeypatch.setattr(analytics, "MAX_PENDING", 3)
        today = flusher.day
        flusher.day = today - dt.timedelta(days=1)
        for image_id in (1, 2):
            counts.served(image_id, 100, "memory")
        with caplog.at_level(logging.WARNING, logger="ecogram.analytics"):
            assert await flusher.flush() is False  # raises nothing
        assert set(flusher.pending) == {(1, flusher.day - dt.timedelta(days=1)),
                                        (2, flusher.day - dt.timedelta(days=1))}
        assert flusher.day == today
        for image_id in (1, 3):
            counts.served(image_id, 50, "render")
        counts.rendered(3, 0.25)
        with caplog.at_level(logging.WARNING, logger="ecogram.analytics"):
            assert await flusher.flush() is False
        # Four rows kept for three places: the oldest day's go first, and the log says so.
        assert sorted(flusher.pending) == [(1, today), (2, today - dt.timedelta(days=1)),
                                           (3, today)]
        assert flusher.pending[(3, today)] == [1, 50, 0, 1, 250.0]
        lines = [json.loads(r.getMessage()) for r in caplog.records]
        assert {"event": "analytics_dropped", "rows": 1, "requests": 1} in lines
        assert [line["event"] for line in lines].count("analytics_flush_failed") == 2
    finally:
        await pool.close()


async def test_counts_go_to_the_day_they_were_counted_in(client, login_as, clean_db):
    from tests.views.cdn_support import publish

    photo = await publish(client, login_as, make_photo(7), "SKU-1")
    pool = await db.create_pool(clean_db, 1, 2, 5)
    try:
        counts = analytics.Counts()
        flusher = analytics.Flusher(pool, counts, 10)
        today = flusher.day
        flusher.day = today - dt.timedelta(days=1)  # the period began before midnight
        counts.served(photo["id"], 1000, "memory")
        assert await flusher.flush()
        counts.served(photo["id"], 10, "memory")
        counts.served(photo["id"], 10, "not_modified")
        await flusher.stop()  # not started: the last flush all the same
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT day, requests, bytes_sent, hits FROM delivery_stats ORDER BY day")
    finally:
        await pool.close()
    assert [tuple(row) for row in rows] == [
        (today - dt.timedelta(days=1), 1, 1000, 1), (today, 2, 20, 2)]
