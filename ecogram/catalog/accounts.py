"""Accounts: registration, sign-in and sign-out, password changes, and the admins' user list.

Every function takes the pool (or a connection) and plain values, never an HTTP request. Each
change lands in the audit trail. Passwords exist here only on their way into argon2id: they are
never stored, logged or returned, and the user JSON never carries the hash or token_version.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth import passwords, tokens
from ecogram.auth.identity import Credentials, Identity
from ecogram.auth.roles import ROLES
from ecogram.auth.throttle import LoginThrottle
from ecogram.catalog import audit
from ecogram.catalog.records import iso
from ecogram.errors import AppError, conflict, invalid, not_found
from ecogram.settings import Settings

log = logging.getLogger("ecogram.auth")

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
# Something@something.something, without blanks or control characters (the API's model of an
# e-mail address uses the same pattern: ecogram.models).
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
EDITABLE_FIELDS = ("role", "disabled")
# The importer `ecogram demo` names on its records. Nobody knows its password, so it never counts
# as an admin: after the demo, the first account registered still becomes admin.
DEMO_EMAIL = "demo@ecogram.invalid"


def user_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A user as the API shows it: never the password hash, never token_version."""
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "disabled": row["disabled"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }



def identity_of(row: Mapping[str, Any]) -> Identity:
    return Identity(id=row["id"], email=row["email"], name=row["name"], role=row["role"])


def check_email(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("An e-mail address is required.", field="email")
    email = value.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email) or _CONTROL.search(email):
        raise invalid("This is not an e-mail address.", field="email")
    if email.lower() == DEMO_EMAIL:
        raise invalid("This e-mail address is reserved for the demo.", field="email")
    return email


def check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid("A name is required.", field="name")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise invalid(
            f"The name must be at most {MAX_NAME_LENGTH} characters, without control characters.",
            field="name",
        )
    return name


def check_role(value: object) -> str:
    if value not in ROLES:
        raise invalid(f"The role must be one of {', '.join(ROLES)}.", field="role",
                      allowed=list(ROLES))
    return value  # type: ignore[return-value]


async def admin_exists(conn: asyncpg.Connection) -> bool:
    """Whether an active admin (the demo's account never counts) can run the service."""
    return await db.queries.active_admin_exists(conn, demo_email=DEMO_EMAIL)


async def may_claim_admin(conn: asyncpg.Connection, settings: Settings) -> bool:
    """Whether the next registration becomes admin.

    Open registration: while no active admin exists. Closed registration: only on a fresh
    install (nobody but the demo's account), so an operator who made accounts with
    ``ecogram create-user`` keeps deciding who administers.
    """
    if settings.registration == "closed":
        return not await db.queries.account_exists_besides_demo(conn, demo_email=DEMO_EMAIL)
    return not await admin_exists(conn)


async def next_registration_is_admin(pool: asyncpg.Pool, settings: Settings) -> bool:
    """What the sign-in and registration pages tell a newcomer: whether registering now makes
    an admin (``may_claim_admin``). Only a hint: while the database is away it says no."""
    try:
        async with pool.acquire() as conn:
            return await may_claim_admin(conn, settings)
    except Exception as exc:
        if db.is_unavailable(exc):
            return False
        raise


def _registration_closed() -> AppError:
    return AppError(403, "registration_closed", "Registration is closed; ask an admin for an "
                    "account.")


async def register(
    pool: asyncpg.Pool, settings: Settings, *, email: object, name: object, password: object,
    client: str | None,
) -> dict[str, Any]:
    """Create an account: admin while nobody can administer (``may_claim_admin``), else viewer
    (or 403 when registration is closed).

    The demo's account never counts as an admin, so the first person to register after
    ``ecogram demo`` (or after every admin was disabled) becomes admin.
    """
    email = check_email(email)
    name = check_name(name)
    password = passwords.check_password_rules(password, email)
    if settings.registration == "closed":
        # Cheap early answer; the decision that counts is made again under the lock below.
        async with pool.acquire() as conn:
            if not await may_claim_admin(conn, settings):
                raise _registration_closed()
    password_hash = await passwords.hash_password(password)
    async with pool.acquire() as conn, conn.transaction():
        # Two concurrent first registrations: the second waits here, then sees the first.
        await db.queries.lock_user_registration(conn)
        first = await may_claim_admin(conn, settings)
        if not first and settings.registration == "closed":
            raise _registration_closed()
        role = "admin" if first else "viewer"
        row = await db.queries.insert_user(
            conn, email=email, name=name, password_hash=password_hash, role=role
        )
        if row is None:
            raise conflict("email_taken", "An account with this e-mail address already exists.",
                           field="email")
        await audit.record(conn, identity_of(row), "user.register", target=f"user:{row['id']}",
                           client=client, details={"role": role, "first_admin": first})
    return user_json(row)


async def create_user(
    conn: asyncpg.Connection, *, email: object, name: object, role: object, password: object,
) -> dict[str, Any]:
    """An account made by an operator (``ecogram create-user``), with the role given."""
    email = check_email(email)
    name = check_name(name)
    role = check_role(role)
    password = passwords.check_password_rules(password, email)
    password_hash = await passwords.hash_password(password)
    async with conn.transaction():
        row = await db.queries.insert_user(
            conn, email=email, name=name, password_hash=password_hash, role=role
        )
        if row is None:
            raise conflict("email_taken", "An account with this e-mail address already exists.",
                           field="email")
        await audit.record(conn, None, "user.create", target=f"user:{row['id']}",
                           actor_name="command line", details={"role": role})
    return user_json(row)


def _bad_credentials() -> AppError:
    return AppError(401, "invalid_credentials", "The e-mail address or the password is wrong.")


async def login(
    pool: asyncpg.Pool, settings: Settings, throttle: LoginThrottle, *, email: object,
    password: object, client: str,
) -> tuple[tokens.IssuedToken, Identity]:
    """Check the password and issue an access token; 401 on any mismatch, 429 when throttled.

    An unknown e-mail is verified against a dummy hash and a disabled account's password is
    checked all the same, so the answer and its timing do not reveal which accounts exist.
    """
    if not isinstance(email, str) or not email.strip():
        raise invalid("An e-mail address is required.", field="email")
    if not isinstance(password, str) or not password:
        raise invalid("A password is required.", field="password")
    email = email.strip()[:MAX_EMAIL_LENGTH]
    try:
        attempt = await throttle.begin(email, client)
    except AppError as error:
        if error.status == 429:
            log.warning(json.dumps({"event": "login_throttled", "client": client}))
        raise
    async with pool.acquire() as conn:
        row = await db.queries.get_user_for_login(conn, email=email)
    if row is None:
        await passwords.verify_dummy(password)
        matched, reason = False, "unknown_email"
    else:
        matched = await passwords.verify_password(row["password_hash"], password)
        reason = "wrong_password"
        if matched and row["disabled"]:
            matched, reason = False, "disabled"
    if not matched:
        async with pool.acquire() as conn:
            await audit.record(
                conn, identity_of(row) if row else None, "login.failed", actor_name=email,
                target=f"user:{row['id']}" if row else None, client=client,
                details={"reason": reason},
            )
        raise _bad_credentials()
    await throttle.succeeded(attempt)
    async with pool.acquire() as conn:
        if passwords.needs_rehash(row["password_hash"]):
            new_hash = await passwords.hash_password(password)
            await db.queries.rehash_password(
                conn, id=row["id"], new_hash=new_hash, old_hash=row["password_hash"]
            )
        issued = tokens.issue(settings.secret_key, row["id"], row["token_version"],
                              settings.token_ttl)
        identity = identity_of(row)
        await audit.record(conn, identity, "login", target=f"user:{row['id']}", client=client)
    return issued, identity


async def logout(
    pool: asyncpg.Pool, identity: Identity, credentials: Credentials, *, client: str | None,
) -> None:
    """Revoke the token at once (not only when it expires)."""
    expires_at = dt.datetime.fromtimestamp(credentials.expires_at, tz=dt.UTC)
    async with pool.acquire() as conn, conn.transaction():
        await db.queries.revoke_token(conn, jti=credentials.jti, expires_at=expires_at)
        await db.queries.purge_revoked_tokens(conn)
        await audit.record(conn, identity, "logout", target=f"user:{identity.id}", client=client)


async def change_password(
    pool: asyncpg.Pool, settings: Settings, throttle: LoginThrottle, identity: Identity, *,
    current_password: object, new_password: object, client: str,
) -> tokens.IssuedToken:
    """Set a new password; every token issued before stops working; a fresh one is returned."""
    if not isinstance(current_password, str) or not current_password:
        raise invalid("The current password is required.", field="current_password")
    new_password = passwords.check_password_rules(new_password, identity.email)
    # Guessing the current password through this endpoint counts like failed logins.
    attempt = await throttle.begin(identity.email, client)
    async with pool.acquire() as conn:
        stored_hash = await db.queries.get_password_hash(conn, id=identity.id)
    if stored_hash is None:
        raise not_found("There is no such user.")
    if not await passwords.verify_password(stored_hash, current_password):
        async with pool.acquire() as conn:
            await audit.record(conn, identity, "password.failed", target=f"user:{identity.id}",
                               client=client)
        raise invalid("The current password is wrong.", field="current_password")
    await throttle.succeeded(attempt)
    new_hash = await passwords.hash_password(new_password)
    async with pool.acquire() as conn, conn.transaction():
        updated = await db.queries.update_password_hash(conn, id=identity.id,
                                                        password_hash=new_hash)
        await audit.record(conn, identity, "user.password", target=f"user:{identity.id}",
                           client=client)
    return tokens.issue(settings.secret_key, updated["id"], updated["token_version"],
                        settings.token_ttl)


async def set_password(conn: asyncpg.Connection, user_id: int, new_password: str) -> None:
    """An operator's reset: no current password needed; live tokens stop working."""
    row = await db.queries.get_user(conn, id=user_id)
    if row is None:
        raise not_found("There is no such user.")
    passwords.check_password_rules(new_password, row["email"])
    new_hash = await passwords.hash_password(new_password)
    async with conn.transaction():
        await db.queries.update_password_hash(conn, id=user_id, password_hash=new_hash)
        await audit.record(conn, None, "user.password", target=f"user:{user_id}",
                           actor_name="command line")


async def list_users(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        return [user_json(row) async for row in db.queries.list_users(conn)]


def check_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(EDITABLE_FIELDS))
    if unknown:
        raise invalid("Only role and disabled can be changed here.", fields=unknown)
    if not body:
        raise invalid("Nothing to change: give role and/or disabled.")
    changes: dict[str, Any] = {}
    if "role" in body:
        changes["role"] = check_role(body["role"])
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise invalid("disabled must be true or false.", field="disabled")
        changes["disabled"] = body["disabled"]
    return changes


async def update_user(
    pool: asyncpg.Pool, actor: Identity, user_id: int, body: Mapping[str, Any], *,
    client: str | None,
) -> dict[str, Any]:
    """Change a user's role and/or disabled flag; never leaves the service without an admin.

    Changes run one at a time under a transaction-scoped lock, so two admins demoting each other
    at once cannot both succeed (409 for the second).
    """
    changes = check_changes(body)
    async with pool.acquire() as conn, conn.transaction():
        await db.queries.lock_admin_changes(conn)
        row = await db.queries.get_user_for_update(conn, id=user_id)
        if row is None:
            raise not_found("There is no such user.")
        before = {"role": row["role"], "disabled": row["disabled"]}
        after = {**before, **changes}
        if after == before:
            return user_json(row)
        was_admin = (before["role"] == "admin" and not before["disabled"]
                     and row["email"].lower() != DEMO_EMAIL)
        stays_admin = after["role"] == "admin" and not after["disabled"]
        if was_admin and not stays_admin and await db.queries.count_active_admins(
                conn, demo_email=DEMO_EMAIL) <= 1:
            raise conflict("last_admin", "This is the last active admin: promote another user "
                           "to admin first.")
        updated = await db.queries.update_user_access(
            conn, id=user_id, role=after["role"], disabled=after["disabled"]
        )
        diff = audit.changes(before, after)
        target = f"user:{user_id}"
        if "role" in diff:
            await audit.record(conn, actor, "user.role", target=target, client=client,
                               details={"role": diff["role"], "email": row["email"]})
        if "disabled" in diff:
            await audit.record(conn, actor, "user.disabled", target=target, client=client,
                               details={"disabled": diff["disabled"], "email": row["email"]})
    return user_json(updated)


async def get_user(pool: asyncpg.Pool, user_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await db.queries.get_user(conn, id=user_id)
    if row is None:
        raise not_found("There is no such user.")
    return user_json(row)
