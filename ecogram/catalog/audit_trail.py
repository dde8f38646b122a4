"""Reading the audit trail (admins). Writing is ``ecogram.catalog.audit.record``; nothing in
the service updates or deletes an entry (and the table's trigger refuses it anyway)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db
from ecogram.errors import invalid

MAX_PER_PAGE = 200
MAX_PAGE = 100_000
MAX_ACTION = 100


@dataclass(frozen=True)
class AuditQuery:
    image_id: int | None = None
    actor: str | None = None  # a user id (digits) or the actor's name
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        problems = {}
        if not 1 <= self.page <= MAX_PAGE:
            problems["page"] = f"from 1 to {MAX_PAGE}"
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            problems["per_page"] = f"from 1 to {MAX_PER_PAGE}"
        if self.action is not None and len(self.action) > MAX_ACTION:
            problems["action"] = f"at most {MAX_ACTION} characters"
        if self.actor is not None and len(self.actor) > 200:
            problems["actor"] = "at most 200 characters"
        if problems:
            raise invalid("Some query parameters are not acceptable.", fields=problems)


def entry(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "actor_id": row["actor_id"],
        "actor": row["actor"],
        "action": row["action"],
        "image_id": row["image_id"],
        "target": row["target"],
        "client": row["client"],
        "details": row["details"],
    }


async def list_entries(
    conn: asyncpg.Connection, query: AuditQuery
) -> tuple[list[dict[str, Any]], int]:
    actor_id = actor = None
    if query.actor:
        if query.actor.isascii() and query.actor.isdigit() and len(query.actor) < 19:
            actor_id = int(query.actor)
        else:
            actor = query.actor
    filters = {"image_id": query.image_id, "actor_id": actor_id, "actor": actor,
               "action": query.action, "since": query.since, "until": query.until}
    async with conn.transaction(readonly=True):
        rows = [row async for row in db.queries.audit_list(
            conn, **filters, limit=query.per_page, offset=(query.page - 1) * query.per_page)]
        total = await db.queries.audit_count(conn, **filters)
    return [entry(row) for row in rows], total
