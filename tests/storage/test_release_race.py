"""An object is never deleted between its write and the commit of the record that names it.

The PostgreSQL store (the default), where the hazard is sharpest: the same bytes are imported
again under another code while the only record naming them is purged. Without the lock on the
object's name, the release after the purge sees no committed record naming it and deletes it,
and the import then commits a record naming a missing object."""

from __future__ import annotations

import asyncio

import pytest

from ecogram import db, storage
from ecogram.catalog import originals
from tests.catalog.photos import make_photo
from tests.storage.test_object_store import upload

COPY_RECORD = """
WITH copied AS (
    INSERT INTO images (code, product, position, filename, format, mime, width, height,
                        file_size, sha256, phash, blurhash, color, importer)
    SELECT 'OTHER-1', product, 1, filename, format, mime, width, height, file_size, sha256,
           phash, blurhash, color, importer
      FROM images WHERE id = $1
    RETURNING id)
INSERT INTO originals (image_id, store, master_sha256, master_format, master_width,
                       master_height)
SELECT copied.id, o.store, o.master_sha256, o.master_format, o.master_width, o.master_height
  FROM copied, originals o WHERE o.image_id = $1
"""


@pytest.fixture
async def pool(settings):
    pool = await db.create_pool(settings.database_url, 1, 6)
    yield pool
    await pool.close()


async def test_release_waits_for_a_write_in_flight_of_the_same_object(
    client, login_as, pool, conn
):
    photo = make_photo(9)
    response = await upload(client, await login_as("importer"), "FIRST-1", photo)
    assert response.status == 201
    image_id = (await response.json())["items"][0]["image_id"]
    refs = await originals.refs_of(conn, image_id)
    names = originals.keys_of(refs)

    # An import of the same bytes under another code: objects written, record not committed.
    async with pool.acquire() as writer:
        transaction = writer.transaction()
        await transaction.start()
        for name in names:
            data = await storage.get(writer, "postgres", name)
            await storage.put(writer, "postgres", name, data)
        await writer.execute(COPY_RECORD, image_id)

        # Meanwhile the first record is purged, and its objects released.
        await conn.execute("DELETE FROM images WHERE id = $1", image_id)
        release = asyncio.create_task(originals.release(pool, "postgres", names))
        await asyncio.sleep(0.5)
        assert not release.done()  # waiting for the write's commit, not deleting under it
        await transaction.commit()

    assert await release == 0  # the new record names both objects: both kept
    found = await conn.fetchval("SELECT count(*) FROM blobs WHERE sha256 = ANY($1)", names)
    assert found == 2
    # With no record naming them any more, the same release deletes them.
    await conn.execute("DELETE FROM images")
    assert await originals.release(pool, "postgres", names) == 2
    assert await conn.fetchval("SELECT count(*) FROM blobs") == 0
