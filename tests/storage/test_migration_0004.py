"""Migration 0004 moves the bytes of a database migrated before it (originals.data and .master)
into blobs, named by their sha256, and every record then reads the same bytes through the seam."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from ecogram import db, storage
from tests.catalog.photos import make_photo


async def test_existing_originals_move_into_blobs(server_url):
    name = f"ecogram_m4_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await db.connect(url)
        try:
            await conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                               "name text NOT NULL, applied_at timestamptz NOT NULL "
                               "DEFAULT now())")
            for migration in db.load_migrations()[:3]:  # the schema before 0004
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                   migration.version, migration.name)
            photos = {code: (make_photo(seed), make_photo(seed, 120, 120))
                      for seed, code in enumerate(["OLD-1", "OLD-2"])}
            photos["OLD-3"] = photos["OLD-1"]  # the same bytes under another code: one object
            for code, (data, master) in photos.items():
                image_id = await conn.fetchval(
                    "INSERT INTO images (code, position, filename, format, mime, width, height, "
                    "file_size, sha256, phash, blurhash, color, importer) VALUES ($1, 1, 'a.jpg',"
                    " 'jpeg', 'image/jpeg', 240, 240, $2, $3, 0, 'L', '#fff', 'x') RETURNING id",
                    code, len(data), hashlib.sha256(data).hexdigest())
                await conn.execute(
                    "INSERT INTO originals (image_id, data, master, master_format, master_width,"
                    " master_height) VALUES ($1, $2, $3, 'jpeg', 120, 120)",
                    image_id, data, master)

            assert await db.migrate(conn) == [4]

            assert await conn.fetchval("SELECT count(*) FROM blobs") == 4
            columns = {r["column_name"] for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'originals'")}
            assert "data" not in columns and "master" not in columns
            rows = await conn.fetch("SELECT i.code, i.sha256, o.store, o.master_sha256 "
                                    "FROM images i JOIN originals o ON o.image_id = i.id")
            for row in rows:
                data, master = photos[row["code"]]
                assert row["store"] == "postgres"
                assert await storage.get(conn, row["store"], row["sha256"]) == data
                assert await storage.get(conn, row["store"], row["master_sha256"]) == master
                assert row["master_sha256"] == hashlib.sha256(master).hexdigest()
        finally:
            await storage.close()
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
