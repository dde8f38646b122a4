"""``ecogram export``: the same exports from the command line, streamed to a file."""

from __future__ import annotations

import asyncio
import csv
import io

import asyncpg

from ecogram.catalog.exports import SHOPIFY_HEADER
from ecogram.cli import main


async def _seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for code, position, status in [("CLI-1", 1, "approved"), ("CLI-1", 2, "approved"),
                                        ("CLI-2", 1, "approved"), ("CLI-2", 2, "pending")]:
            await conn.execute(
                "INSERT INTO images (code, product, position, status, filename, format, mime, "
                "width, height, file_size, sha256, phash, blurhash, color, importer) VALUES "
                "($1, 'Product ' || $1, $2, $3, 'a.jpg', 'jpeg', 'image/jpeg', 800, 800, 10, "
                "md5(random()::text), 0, 'L', '#ffffff', 'seed')", code, position, status)
    finally:
        await conn.close()


async def _fetch(url: str, query: str):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def test_cli_export_to_a_file_with_filters(clean_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ECOGRAM_PUBLIC_URL", "https://cdn.example.com/")
    asyncio.run(_seed(clean_db))
    out = tmp_path / "shopify.csv"
    assert main(["export", "--format", "shopify", "-o", str(out), "--code", "CLI-1"]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == SHOPIFY_HEADER
    assert [(r[0], r[3]) for r in rows[1:]] == [("cli-1", "1"), ("cli-1", "2")]
    assert rows[1][2].startswith("https://cdn.example.com/img/CLI-1/1?v=")
    assert "exported 2 images" in capsys.readouterr().err
    assert not (tmp_path / "shopify.csv.partial").exists()
    # Everything approved, to stdout.
    assert main(["export", "--format", "woocommerce"]) == 0
    text = capsys.readouterr().out
    assert [r[0] for r in csv.reader(io.StringIO(text))][1:] == ["CLI-1", "CLI-2"]
    exports = asyncio.run(_fetch(clean_db, "SELECT actor, format, count FROM exports ORDER BY id"))
    assert [(e["format"], e["count"]) for e in exports] == [("shopify", 2), ("woocommerce", 3)]
    assert exports[0]["actor"].startswith("command line")
    audit = asyncio.run(_fetch(clean_db, "SELECT action, actor_id FROM audit_log"))
    assert [(a["action"], a["actor_id"]) for a in audit] == [("export", None), ("export", None)]
    assert main(["export", "--format", "json", "--since", "not-a-date"]) == 2
