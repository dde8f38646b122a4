"""PostgreSQL: the pool, the embedded server, migrations and the named queries.

SQL lives in ``sql/``: numbered migrations in ``sql/migrations`` and named queries (aiosql
style, ``-- name: get-image^``) in ``sql/queries``. Use cases receive a connection and call
``queries.<name>(conn, ...)``, so several queries can share one transaction.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosql
import asyncpg

from ecogram.errors import AppError

log = logging.getLogger("ecogram.db")

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"

# Any constant would do; it only has to be the same for every process of this service.
MIGRATION_LOCK_ID = 0xEC06_2A11

queries = aiosql.from_path(QUERIES_DIR, "asyncpg", mandatory_parameters=False)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of E-co Gram than this one."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", path.name)
        if not match:
            raise RuntimeError(f"migration file name not understood: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return migrations


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations in order, each in its own transaction; return those applied.

    A session-level advisory lock serialises concurrent migrators: the second process waits,
    then finds nothing left to do.
    """
    migrations = load_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        newest_known = migrations[-1].version if migrations else 0
        if applied and max(applied) > newest_known:
            raise SchemaTooNew(
                f"database schema version {max(applied)} is newer than this code's "
                f"{newest_known}; upgrade E-co Gram"
            )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info(json.dumps({"event": "migrated", "version": migration.version}))
            done.append(migration.version)
        await install_job_queue(conn)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def install_job_queue(conn: asyncpg.Connection) -> None:
    """The job queue's own tables (pgqueuer, ecogram/jobs.py), by its own installer, under the
    migration lock: installed when missing, else brought up to the installed version's schema
    (a no-op when it is already)."""
    from pgqueuer.queries import Queries  # the job queue library; only migrations need it here

    queue = Queries.from_asyncpg_connection(conn)
    if not await queue.schema_is_installed():
        async with conn.transaction():
            await queue.install()
        log.info(json.dumps({"event": "job_queue_installed"}))
    elif (await queue.plan_upgrade()).statements:
        await queue.upgrade()
        log.info(json.dumps({"event": "job_queue_upgraded"}))


async def schema_state(conn: asyncpg.Connection) -> tuple[int, int]:
    """(version in the database, newest version this code knows)."""
    newest = len(load_migrations())
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    current = await conn.fetchval("SELECT max(version) FROM schema_migrations") if exists else 0
    return current or 0, newest


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come and go as Python objects.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def connect(url: str, **kwargs: Any) -> asyncpg.Connection:
    conn = await asyncpg.connect(url, **kwargs)
    await _init_connection(conn)
    return conn


class Pool(asyncpg.Pool):
    """asyncpg's pool whose ``acquire()`` waits at most ``acquire_timeout`` seconds (a free
    slot and, when needed, a new connection) unless the caller says otherwise: a dead or
    saturated database becomes a 503 within seconds (``is_unavailable``), never a hang."""

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None):  # type: ignore[override]
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    url: str, min_size: int = 1, max_size: int = 10, wait: float = 5.0
) -> asyncpg.Pool:
    """The pool; ``wait`` (seconds) bounds both a new connection and every ``acquire()``."""
    pool = Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init=_init_connection,
        command_timeout=60,
        timeout=wait,  # connect
    )
    pool.acquire_timeout = wait
    _quiet_pool_log()
    return await pool


class _OneLineReconnects(logging.Filter):
    """asyncpg's pool logs every failed attempt to restore its minimum size with a traceback:
    while the database is away, one traceback a second and then fewer. Those become one JSON
    line each, without the trace; anything else it logs passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and is_unavailable(error):
            record.msg = json.dumps({"event": "database_reconnect_failed",
                                     "error": type(error).__name__})
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_pool_log() -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _OneLineReconnects) for f in pool_log.filters):
        pool_log.addFilter(_OneLineReconnects())


# --- the database is away --------------------------------------------------------------------

RETRY_AFTER = 5  # seconds a client is told to wait while the database is unavailable

# What a database that is down, restarting, shutting down or full of connections raises; a
# query's own errors (constraint violations, syntax, serialization) are not among them.
_UNAVAILABLE = (
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the connection died under a query
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, shutting down
    asyncpg.exceptions.AdminShutdownError,  # 57P01
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.TooManyConnectionsError,  # 53300
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database cannot be reached or used right now".

    That is asyncpg's connection-level errors, and an ``OSError`` (refused, reset, no socket)
    or ``TimeoutError`` (connect, acquire, command) raised from inside asyncpg — the same
    classes raised anywhere else (a file, the client's socket) are not the database's — and a
    connection found closed. An error raised while handling one (a rollback on the dead
    connection) counts too.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, OSError | TimeoutError) and _raised_in_driver(current):
            return True
        # The server went away between two queries on a connection held meanwhile; asyncpg
        # says so only in the message (the pool reconnects closed connections on acquire).
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _raised_in_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg."):
            return True
        tb = tb.tb_next
    return False


def unavailable() -> AppError:
    """The answer while the database is away: 503 ``unavailable`` with ``Retry-After``."""
    return AppError(
        503, "unavailable", "The service is briefly unavailable; try again in a few seconds.",
        {"retry_after": RETRY_AFTER}, headers={"Retry-After": str(RETRY_AFTER)},
    )


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir/pg`` and return its URL.

    pgserver keeps the server running while this process holds the handle. When run as root it
    creates a system user for PostgreSQL and makes the data directory's parents readable by it,
    so keep ECOGRAM_DATA_DIR somewhere that may be world-readable.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pgserver asks platformdirs for its runtime directory when imported; without
        # XDG_RUNTIME_DIR (containers, cron, ssh) that printed a warning on every command.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver  # imported here: it is only needed without DATABASE_URL

        server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    _embedded_servers.append(server)  # keep the handle alive for the life of the process
    return server.get_uri()


_embedded_servers: list[Any] = []
