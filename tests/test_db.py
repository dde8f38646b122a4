import asyncio

import asyncpg
import pytest

from ecogram import db
from ecogram.catalog.delivery import Resolved, with_quality
from ecogram.imaging.options import RenderOptions


async def test_migrations_are_numbered_without_gaps():
    migrations = db.load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


async def test_migrate_twice_is_a_no_op(clean_db):
    conn = await db.connect(clean_db)
    try:
        assert await db.migrate(conn) == []  # the run's database is migrated already
        current, newest = await db.schema_state(conn)
        assert current == newest == len(db.load_migrations())
    finally:
        await conn.close()


@pytest.fixture
async def empty_database(server_url):
    """A database with no schema at all, dropped afterwards."""
    name = "ecogram_empty_" + str(id(object()))
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    yield url
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


async def test_concurrent_migrations_leave_one_consistent_schema(empty_database):
    async def run() -> list[int]:
        conn = await db.connect(empty_database)
        try:
            return await db.migrate(conn)
        finally:
            await conn.close()

    results = await asyncio.gather(*(run() for _ in range(4)))
    newest = len(db.load_migrations())
    # Exactly one migrator applied everything; the others found nothing to do.
    assert sorted(results, key=len) == [[], [], [], list(range(1, newest + 1))]
    conn = await db.connect(empty_database)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, newest + 1))
    finally:
        await conn.close()


async def test_refuses_a_schema_newer_than_the_code(empty_database):
    conn = await db.connect(empty_database)
    try:
        await db.migrate(conn)
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
        with pytest.raises(db.SchemaTooNew):
            await db.migrate(conn)
    finally:
        await conn.close()


async def test_audit_log_is_append_only(conn):
    await db.queries.add_audit(
        conn, actor_id=None, actor="system", action="test", image_id=None, target=None,
        client=None, details={"a": 1},
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await conn.execute("DELETE FROM audit_log")
    assert await conn.fetchval("SELECT details->>'a' FROM audit_log") == "1"


async def test_user_email_is_unique_case_insensitively(conn):
    insert = "INSERT INTO users (email, name, password_hash) VALUES ($1, 'A', 'x')"
    await conn.execute(insert, "Ana@Example.com")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, "ana@example.COM")


async def test_image_status_is_checked(conn):
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(
            "INSERT INTO images (code, position, status, filename, format, mime, width, height,"
            " file_size, sha256, phash, blurhash, color, importer)"
            " VALUES ('SKU-1', 1, 'published', 'a.jpg', 'jpeg', 'image/jpeg', 1, 1, 1, 'x', 0,"
            " 'x', '#000000', 'me')"
        )


async def test_calibrations_before_per_width_quality_keep_serving_every_width(empty_database):
    # A database at migration 9 with a calibrated q (one per photo and format, VERSION 2)
    # migrates to a q per width: the old row becomes width 0, which /img reads as "every width"
    # (ecogram.imaging.quality.for_width) until `ecogram calibrate --stale` replaces it.
    conn = await db.connect(empty_database)
    try:
        await conn.execute("""CREATE TABLE schema_migrations (
                                  version integer PRIMARY KEY, name text NOT NULL,
                                  applied_at timestamptz NOT NULL DEFAULT now())""")
        for migration in db.load_migrations():
            if migration.version > 9:
                break
            await conn.execute(migration.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                               migration.version, migration.name)
        image_id = await conn.fetchval(
            "INSERT INTO images (code, position, filename, format, mime, width, height, "
            "file_size, sha256, phash, blurhash, color, importer, status) VALUES "
            "('OLD-Q', 1, 'a.jpg', 'jpeg', 'image/jpeg', 1600, 1200, 100, 'x', 0, 'L', "
            "'#ffffff', 'seed', 'approved') RETURNING id")
        await conn.execute("INSERT INTO blobs (sha256, data) VALUES ('x', 'x')")
        await conn.execute(
            "INSERT INTO originals (image_id, master_sha256, master_format, master_width, "
            "master_height) VALUES ($1, 'x', 'jpeg', 1600, 1200)", image_id)
        await conn.execute(
            "INSERT INTO image_quality (image_id, version, format, q, score, target, "
            "calibration) VALUES ($1, 1, 'webp', 63, 70.2, 70, 2)", image_id)

        assert await db.migrate(conn) == list(range(10, len(db.load_migrations()) + 1))
        row = await db.queries.delivery_resolve(conn, code="OLD-Q", position=None)
        assert row["quality"] == {"webp": {"0": 63}}
        resolved = Resolved.from_row(row)
        for width in (200, 400, 800, 1600):
            assert with_quality(RenderOptions(width=width), resolved, "webp").quality == 63
        # a second row for the same version, format and width is refused; another width is not
        await conn.execute(
            "INSERT INTO image_quality (image_id, version, format, width, q, score, target, "
            "calibration) VALUES ($1, 1, 'webp', 400, 55, 70.1, 70, 3)", image_id)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO image_quality (image_id, version, format, width, q, score, "
                "target, calibration) VALUES ($1, 1, 'webp', 400, 56, 70.1, 70, 3)", image_id)
    finally:
        await conn.close()
