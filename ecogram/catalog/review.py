"""Review: approve or reject pending photos, one at a time or in bulk.

Each transition is one conditional ``UPDATE … WHERE status = 'pending' AND deleted_at IS NULL
RETURNING``: when two reviewers race on one photo, PostgreSQL re-checks the condition for the
second after the first commits, so exactly one succeeds and the other gets 409. Nothing is read
before the write; the state is read afterwards only to explain a refusal.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import audit
from ecogram.catalog.events import Events
from ecogram.errors import AppError, conflict, invalid, not_found

ACTIONS = {"approve": "approved", "reject": "rejected"}
MAX_NOTE = 2000
MAX_BULK = 1000


@dataclass(frozen=True)
class Outcome:
    id: int
    ok: bool
    row: asyncpg.Record | None = None
    error: AppError | None = None


def clean_note(action: str, note: Any) -> str | None:
    """The reviewer's note; a rejection must say why."""
    if note is not None and not isinstance(note, str):
        raise invalid("reason must be a string.", fields={"reason": "a string"})
    note = unicodedata.normalize("NFC", note).strip() if note else ""
    if len(note) > MAX_NOTE:
        raise invalid("reason is too long.", fields={"reason": f"at most {MAX_NOTE} characters"})
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in note):
        raise invalid("reason contains control characters.",
                      fields={"reason": "no control characters"})
    if action == "reject" and not note:
        raise invalid("A rejection needs a reason.", fields={"reason": "required to reject"})
    return note or None


def _refusal(image_id: int, status: str | None) -> AppError:
    if status is None:
        return not_found("There is no image with this id.")
    return conflict("not_pending", f"The image is {status}, not pending; only pending images "
                    "can be reviewed.", status=status)


async def review(
    conn: asyncpg.Connection,
    actor: Identity,
    action: str,
    image_ids: list[int],
    note: Any = None,
    *,
    events: Events | None = None,
) -> list[Outcome]:
    """Approve or reject each id that is pending; per-id outcome in the order given."""
    if action not in ACTIONS:
        raise invalid("action must be approve or reject.",
                      fields={"action": "approve or reject"})
    note = clean_note(action, note)
    if not image_ids:
        raise invalid("Give at least one id.", fields={"ids": "not empty"})
    if len(image_ids) > MAX_BULK:
        raise invalid(f"At most {MAX_BULK} ids at once.", fields={"ids": f"at most {MAX_BULK}"})
    unique = list(dict.fromkeys(image_ids))
    status = ACTIONS[action]
    async with conn.transaction():
        rows = [row async for row in db.queries.review_transition(
            conn, ids=unique, status=status, reviewer_id=actor.id, reviewer=actor.name,
            note=note)]
        done = {row["id"]: row for row in rows}
        for row in rows:
            await audit.record(
                conn, actor, f"image.{status}", image_id=row["id"],
                target=f"{row['code']}/{row['position']}",
                details={**audit.changes({"status": "pending"}, {"status": status}),
                         "note": note},
            )
        missing = [i for i in unique if i not in done]
        states = (
            {r["id"]: r["status"] async for r in db.queries.review_states(conn, ids=missing)}
            if missing else {}
        )
    if events and status == "approved" and done:
        await events.approved(list(done))
    return [
        Outcome(i, True, row=done[i]) if i in done
        else Outcome(i, False, error=_refusal(i, states.get(i)))
        for i in unique
    ]


async def review_one(
    conn: asyncpg.Connection,
    actor: Identity,
    action: str,
    image_id: int,
    note: Any = None,
    *,
    events: Events | None = None,
) -> asyncpg.Record:
    """Approve or reject one image; 404 when it does not exist, 409 when it is not pending."""
    (outcome,) = await review(conn, actor, action, [image_id], note, events=events)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.row is not None
    return outcome.row
