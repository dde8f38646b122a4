"""Roles, weakest first: each has the rights of those before it."""

from __future__ import annotations

ROLES = ("viewer", "importer", "reviewer", "admin")
PUBLIC = "public"  # a route anyone may call, signed in or not


def rank(role: str) -> int:
    return ROLES.index(role)


def allows(user_role: str, required: str) -> bool:
    """True when ``user_role`` is at least ``required`` (``public`` allows everyone)."""
    return required == PUBLIC or rank(user_role) >= rank(required)
