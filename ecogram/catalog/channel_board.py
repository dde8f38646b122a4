"""The admin channels board: products × enabled channels, each cell ready or not and why.

Built from the readiness use case (``ecogram.catalog.channels.readiness``), one page per
channel: without a readiness filter every channel's page holds the same products (they are
chosen by code, text and status, sorted by code), so the board asks each enabled channel for
the same page — at most ``len(channels)`` bounded queries — and each channel's summary counts
every matching product. Filtering by ready or not ready needs one channel (what is "ready"
across ten?), and then the board is that channel's column alone.

The photo page asks the same use case for one product code per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db
from ecogram.catalog import channels
from ecogram.channels import Profile
from ecogram.errors import invalid

PER_PAGE_CHOICES = (25, 50, 100)


@dataclass(frozen=True)
class BoardQuery:
    codes: tuple[str, ...] | None = None
    q: str | None = None
    status: str = "approved"
    channel: str | None = None  # one enabled channel's column, or all of them
    ready: bool | None = None  # only with a channel
    page: int = 1
    per_page: int = PER_PAGE_CHOICES[0]


def _columns(profiles: Sequence[Profile], query: BoardQuery) -> list[Profile]:
    if query.channel is None:
        if query.ready is not None:
            raise invalid("Choose a channel to show only ready or not ready products.",
                          fields={"channel": "a channel, to filter by ready"})
        return list(profiles)
    chosen = [p for p in profiles if p.id == query.channel]
    if not chosen:
        raise invalid("Choose one of the enabled channels.",
                      fields={"channel": ", ".join(p.id for p in profiles)})
    return chosen


def _cell(item: dict[str, Any]) -> dict[str, Any]:
    """One product × channel: ready, the blocking and the fixed findings, photo by photo."""
    reasons = [{**f, "image": None} for f in item["findings"]]
    for image in item["images"]:
        reasons += [{**f, "image": {"id": image["id"], "position": image["position"]}}
                    for f in image["findings"]]
    return {
        "ready": item["ready"],
        "blocking": [r for r in reasons if not r["fixable"]],
        "fixed": [r for r in reasons if r["fixable"]],
        "photos": item["photos"],
        "images": item["images"],
    }


async def board(conn: asyncpg.Connection, profiles: Sequence[Profile], query: BoardQuery,
                lang: str = "en") -> dict[str, Any]:
    """The page's rows (products in code order), its columns and a summary per column."""
    columns = _columns(profiles, query)
    readiness_query = channels.ReadinessQuery(
        codes=query.codes, q=query.q, status=query.status, ready=query.ready,
        page=query.page, per_page=query.per_page)
    rows: dict[str, dict[str, Any]] = {}
    summaries = []
    total = 0
    for profile in columns:
        answer = await channels.readiness(conn, profile, readiness_query, lang)
        total = max(total, answer["total"])
        summaries.append({"channel": profile, **answer["summary"]})
        for item in answer["items"]:
            row = rows.setdefault(item["code"], {
                "code": item["code"], "product": item["product"], "cells": {}, "main": None})
            row["cells"][profile.id] = _cell(item)
            if row["main"] is None:
                row["main"] = next((i["id"] for i in item["images"] if i["main"]), None)
    thumbs = {}
    mains = [row["main"] for row in rows.values() if row["main"] is not None]
    if mains:
        thumbs = {r["id"]: dict(r) async for r in db.queries.channel_board_thumbs(conn,
                                                                                 ids=mains)}
    for row in rows.values():
        row["thumb"] = thumbs.get(row["main"])
    return {
        "columns": columns,
        "rows": sorted(rows.values(), key=lambda row: row["code"]),
        "summaries": summaries,
        "total": total,
        "pages": max(1, -(-total // query.per_page)),
    }


async def photo_channels(conn: asyncpg.Connection, profiles: Sequence[Profile],
                         image: dict[str, Any], lang: str = "en") -> list[dict[str, Any]]:
    """One photo's status per channel: its own findings and its product's (among the photos of
    its status), ``state`` ready / fixed (only findings the rendition fixes) / blocked."""
    query = channels.ReadinessQuery(codes=(image["code"],), status=image["status"], per_page=1)
    out = []
    for profile in profiles:
        answer = await channels.readiness(conn, profile, query, lang)
        item = answer["items"][0] if answer["items"] else None
        mine = next((i for i in item["images"] if i["id"] == image["id"]), None) if item else None
        found = (item["findings"] if item else []) + (mine["findings"] if mine else [])
        blocking = [f for f in found if not f["fixable"]]
        fixed = [f for f in found if f["fixable"]]
        out.append({
            "channel": profile,
            "state": "blocked" if blocking else "fixed" if fixed else "ready",
            "blocking": blocking, "fixed": fixed,
            "main": bool(mine and mine["main"]),
        })
    return out
