"""`ecogram import` and `ecogram demo` run the same use case against the database directly."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from ecogram import cli
from tests.catalog.photos import make_photo, make_zip


@pytest.fixture
def cli_env(clean_db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("ECOGRAM_MIN_SIDE", "100")
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ECOGRAM_LOG_LEVEL", "warning")

    async def add_user() -> None:
        conn = await asyncpg.connect(clean_db)
        try:
            await conn.execute("INSERT INTO users (email, name, password_hash, role) VALUES "
                               "('imp@example.com', 'Ida Importer', 'x', 'importer'), "
                               "('view@example.com', 'Vic Viewer', 'x', 'viewer')")
        finally:
            await conn.close()

    asyncio.run(add_user())
    return clean_db


def fetch(url: str, sql: str):
    async def go():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_import_folder_and_zip_exit_status(cli_env, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "SKU-1.jpg").write_bytes(make_photo(1))
    (folder / "SKU-1_2.jpg").write_bytes(make_photo(2))
    (tmp_path / "more.zip").write_bytes(make_zip({"SKU-2.jpg": make_photo(3)}))
    status = cli.main(["import", str(folder), str(tmp_path / "more.zip"),
                       "--as", "imp@example.com"])
    out, err = capsys.readouterr()
    assert status == 0, out + err
    assert "3 accepted, 0 duplicate, 0 rejected" in out
    assert "3/3" in err  # the progress bar
    rows = fetch(cli_env, "SELECT code, position, importer FROM images ORDER BY code, position")
    assert [tuple(r) for r in rows] == [("SKU-1", 1, "Ida Importer"), ("SKU-1", 2, "Ida Importer"),
                                        ("SKU-2", 1, "Ida Importer")]
    # Again, plus a broken file: duplicates are harmless, the rejection makes the status 1.
    (folder / "SKU-3.jpg").write_bytes(b"not a photo")
    status = cli.main(["import", str(folder), "--as", "imp@example.com"])
    out, _ = capsys.readouterr()
    assert status == 1
    assert "0 accepted, 2 duplicate, 1 rejected" in out
    assert "SKU-3.jpg" in out and "unsupported_type" in out


def test_import_with_code_and_product(cli_env, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(make_photo(1))
    assert cli.main(["import", str(tmp_path / "a.jpg"), "--as", "imp@example.com",
                     "--code", "HAT-9", "--product", "Straw hat"]) == 0
    rows = fetch(cli_env, "SELECT code, product FROM images")
    assert [tuple(r) for r in rows] == [("HAT-9", "Straw hat")]


def test_import_refuses_unknown_or_weak_users(cli_env, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(make_photo(1))
    for email in ("nobody@example.com", "view@example.com"):
        assert cli.main(["import", str(tmp_path / "a.jpg"), "--as", email]) == 1
        assert email in capsys.readouterr().err
    assert fetch(cli_env, "SELECT count(*) AS n FROM images")[0]["n"] == 0


def test_demo_imports_a_catalogue_twice_harmlessly(cli_env, capsys):
    assert cli.main(["demo"]) == 0
    out, _ = capsys.readouterr()
    assert "10 accepted, 0 duplicate, 1 rejected" in out
    rows = fetch(cli_env, "SELECT code, count(*) AS n, min(width) AS w, min(importer) AS who "
                          "FROM images GROUP BY code ORDER BY code")
    assert [(r["code"], r["n"]) for r in rows] == [("BALL-004", 3), ("LAMP-003", 2),
                                                  ("MUG-001", 3), ("TEE-002", 2)]
    assert all(r["w"] >= 1000 and r["who"] == "Demo" for r in rows)
    assert cli.main(["demo"]) == 0
    assert "0 accepted, 10 duplicate, 1 rejected" in capsys.readouterr().out
