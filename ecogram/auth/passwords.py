"""Password hashing: argon2id through argon2-cffi, always off the event loop.

Parameters are at least OWASP's floor for argon2id (19 MiB, 2 passes, 1 lane). A stored hash made
with other parameters is replaced on the next successful login (``needs_rehash``).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ecogram.errors import invalid

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
MIN_LENGTH = 10
# Long enough for any passphrase; short enough that nobody makes us hash megabytes.
MAX_LENGTH = 1024

HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)

# Each hash holds 19 MiB while it runs: a small dedicated pool bounds that memory and keeps
# hashing from starving the default executor (DNS lookups, file reads) under a login storm.
_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="argon2")


async def _run(func, *args):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, functools.partial(func, *args))


def check_password_rules(password: object, email: str) -> str:
    """The password if it is acceptable, else a 422 naming the rule (never echoing it)."""
    if not isinstance(password, str):
        raise invalid("The password must be a string.", field="password")
    if len(password) < MIN_LENGTH:
        raise invalid(
            f"The password must be at least {MIN_LENGTH} characters long.",
            field="password", rule="min_length", min_length=MIN_LENGTH,
        )
    if len(password) > MAX_LENGTH:
        raise invalid(
            f"The password must be at most {MAX_LENGTH} characters long.",
            field="password", rule="max_length", max_length=MAX_LENGTH,
        )
    if password.strip().casefold() == email.strip().casefold():
        raise invalid(
            "The password must not be the e-mail address.", field="password", rule="not_email"
        )
    return password


async def hash_password(password: str) -> str:
    return await _run(HASHER.hash, password)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; a malformed stored hash simply does not match."""
    return await _run(_verify, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


_dummy_hash: str | None = None


async def verify_dummy(password: str) -> None:
    """Spend the time of a real verification, for an e-mail that has no account.

    Logging in with an unknown e-mail then costs what a wrong password costs, so response times
    do not tell which addresses have accounts.
    """
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password("dummy password that matches no account")
    await verify_password(_dummy_hash, password)
