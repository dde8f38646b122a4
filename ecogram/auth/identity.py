"""Who is calling: what the guard puts on an authenticated request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    id: int
    email: str
    name: str
    role: str
