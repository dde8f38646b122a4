"""`ecogram storage migrate --to URL|postgres` moves a catalogue's originals and masters between
PostgreSQL and a real object store (SeaweedFS), resumably, every sha256 checked after."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecogram import cli, db, storage
from ecogram.auth.identity import Identity
from ecogram.catalog import imports, originals
from ecogram.catalog.sources import ImportItem
from tests.catalog.photos import make_photo
from tests.storage.conftest import BUCKET, list_objects, sha256

PHOTOS = 200


class Interrupted(Exception):
    pass


async def _import_catalogue(settings) -> None:
    pool = await db.create_pool(settings.database_url, 1, 4)
    try:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO users (email, name, password_hash, role) "
                "VALUES ('imp@example.com', 'Ida Importer', 'x', 'importer') RETURNING id")
        actor = Identity(row["id"], "imp@example.com", "Ida Importer", "importer")
        items = [ImportItem(filename=f"CAT-{n:03d}.jpg",
                            load=lambda n=n: make_photo(n, 160, 120))
                 for n in range(PHOTOS)]
        with ThreadPoolExecutor(2) as executor:
            report = await imports.ImportRun(pool, settings, executor, actor, "cli").run(items)
        assert report["accepted"] == PHOTOS, report
    finally:
        await pool.close()


async def _state(url: str) -> tuple[dict[str, int], dict[str, bytes], set[str]]:
    """(records per store, the blobs table, the object names the records give)."""
    conn = await db.connect(url)
    try:
        stores = {r["store"]: r["n"] for r in await conn.fetch(
            "SELECT store, count(*) AS n FROM originals GROUP BY store")}
        blobs = {r["sha256"]: bytes(r["data"])
                 for r in await conn.fetch("SELECT sha256, data FROM blobs")}
        names = {name for r in await conn.fetch(
            "SELECT i.sha256, o.master_sha256 FROM images i JOIN originals o "
            "ON o.image_id = i.id") for name in r}
        return stores, blobs, names
    finally:
        await conn.close()


async def _interrupted_migrate(url: str, target: str, after: int) -> None:
    pool = await db.create_pool(url, 1, 4)

    def progress(moved: originals.Moved) -> None:
        if moved.moved == after:
            raise Interrupted  # a Ctrl+C, a lost machine...

    try:
        with pytest.raises(Interrupted):
            await originals.migrate(pool, target, progress)
    finally:
        await storage.close()
        await pool.close()


def test_migrate_both_ways_resumably(settings, seaweed, prefix, monkeypatch, capsys):
    url = settings.database_url
    target = f"s3://{BUCKET}/{prefix}"
    asyncio.run(_import_catalogue(settings))
    stores, blobs, names = asyncio.run(_state(url))
    assert stores == {"postgres": PHOTOS}
    assert set(blobs) == names and len(names) == 2 * PHOTOS

    # To the object store, interrupted after 60 photos: those are moved whole, the rest untouched.
    asyncio.run(_interrupted_migrate(url, target, 60))
    stores, blobs, _ = asyncio.run(_state(url))
    assert stores == {target: 60, "postgres": PHOTOS - 60}
    assert len(blobs) == 2 * (PHOTOS - 60)

    # Run again (the command line): it finishes the job, with a progress bar.
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ECOGRAM_LOG_LEVEL", "warning")
    assert cli.main(["storage", "migrate", "--to", f"{target}/"]) == 0
    out, err = capsys.readouterr()
    assert f"{PHOTOS - 60} photos moved to {target}" in out
    assert f"{PHOTOS - 60}/{PHOTOS - 60}" in err  # the progress bar
    stores, blobs, names = asyncio.run(_state(url))
    assert stores == {target: PHOTOS} and blobs == {}  # no bytes of them left in PostgreSQL
    objects = asyncio.run(list_objects(seaweed.endpoint, prefix))
    assert set(objects) == names
    assert all(sha256(data) == name for name, data in objects.items())

    # And back to PostgreSQL.
    assert cli.main(["storage", "migrate", "--to", "postgres"]) == 0
    out, _ = capsys.readouterr()
    assert f"{PHOTOS} photos moved to postgres" in out
    stores, blobs, names = asyncio.run(_state(url))
    assert stores == {"postgres": PHOTOS}
    assert set(blobs) == names
    assert all(sha256(data) == name for name, data in blobs.items())
    assert asyncio.run(list_objects(seaweed.endpoint, prefix)) == {}

    # Nothing left to move: a third run is a no-op.
    assert cli.main(["storage", "migrate", "--to", "postgres"]) == 0
    assert "0 photos moved" in capsys.readouterr().out


def test_migrate_refuses_an_unknown_target(settings, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    assert cli.main(["storage", "migrate", "--to", "ftp://somewhere"]) == 2
    assert "--to must be unset, postgres, or s3://bucket/prefix" in capsys.readouterr().err
