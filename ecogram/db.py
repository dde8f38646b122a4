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
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


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


async def create_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=60,
        # Unreachable database: fail fast so /readyz answers 503 instead of hanging.
        timeout=5,
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
