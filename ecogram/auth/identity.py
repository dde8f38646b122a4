"""Who is calling: what the guard puts on an authenticated request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    id: int
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class Credentials:
    """The token that authenticated the request: for logout (revocation) and CSRF tokens."""

    jti: str
    expires_at: int  # unix seconds
    via: str  # "bearer" or "cookie"
