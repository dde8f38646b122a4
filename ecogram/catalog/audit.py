"""The audit trail: every use case that changes something appends one entry here."""

from __future__ import annotations

from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity


async def record(
    conn: asyncpg.Connection,
    actor: Identity | None,
    action: str,
    *,
    image_id: int | None = None,
    target: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> None:
    """Append who did what, when (the database's clock), and the before/after in ``details``.

    ``actor`` is None for anonymous events (a failed login): ``actor_name`` then says who was
    claimed.
    """
    await db.queries.add_audit(
        conn,
        actor_id=actor.id if actor else None,
        actor=actor.name if actor else (actor_name or "anonymous"),
        action=action,
        image_id=image_id,
        target=target,
        client=client,
        details=details or {},
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose value changed, as {"field": {"before": old, "after": new}}."""
    return {
        key: {"before": before.get(key), "after": value}
        for key, value in after.items()
        if before.get(key) != value
    }
