"""Listing at shop scale: GET /api/v1/images with 100,000 records.

Creates a fresh database, migrates it, fills it with N image rows by COPY (no originals: the
listing never reads them), then times the listing use case for a set of typical filters, in
process, over the real query path (``ecogram.catalog.images.list_images``), and prints p50/p95
per case. A second pass times the full HTTP request through the app (token check, JSON).

    .venv/bin/python bench/list_bench.py [--rows 100000] [--runs 200]
        [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecogram import db
from ecogram.catalog import images

WORDS = ["red", "blue", "green", "leather", "cotton", "wool", "shoe", "boot", "bag", "hat",
         "scarf", "shirt", "dress", "jacket", "sock", "belt", "watch", "ring", "lamp", "chair"]

CASES: list[tuple[str, dict]] = [
    ("newest first (default)", {}),
    ("status=pending", {"status": "pending"}),
    ("status=approved, sort=code", {"status": "approved", "sort": "code"}),
    ("code=SKU-004242", {"codes": ("SKU-004242",), "sort": "position"}),
    ("q=leather boot (product text)", {"q": "leather boot"}),
    ("q=4242 (code fragment)", {"q": "4242"}),
    ("importer=<id>, since 30 days", {"importer": "1", "since": "30d"}),
    ("sort=-file_size", {"sort": "-file_size"}),
    ("sort=-updated_at, status=rejected", {"sort": "-updated_at", "status": "rejected"}),
    ("page 50 of newest", {"page": 50}),
]


def _with_db(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


async def fill(conn: asyncpg.Connection, rows: int) -> None:
    rnd = random.Random(42)
    user = await conn.fetchval("INSERT INTO users (email, name, password_hash, role) "
                               "VALUES ('bench@example.com', 'Bench', 'x', 'importer') "
                               "RETURNING id")
    now = dt.datetime.now(dt.UTC)
    records = []
    per_code = 0
    code_no = 0
    for i in range(rows):
        if per_code == 0:
            code_no += 1
            per_code = rnd.randint(1, 8)
            position = 0
            product = " ".join(rnd.sample(WORDS, 3)).capitalize()
        position += 1
        per_code -= 1
        status = rnd.choices(["pending", "approved", "rejected"], [3, 6, 1])[0]
        imported = now - dt.timedelta(minutes=rows - i + rnd.random())
        records.append((
            f"SKU-{code_no:06d}", product, position, status, f"file{i}.jpg", "jpeg",
            "image/jpeg", 2000, 2000, rnd.randint(100_000, 5_000_000), secrets.token_hex(32),
            rnd.getrandbits(63), "LKO2?U%2Tw=w]~RBVZRi};RPxuwH", "#aabbcc", "",
            user if i % 3 else None, "Bench" if i % 3 else "Someone", imported, imported,
        ))
    await conn.copy_records_to_table(
        "images", records=records,
        columns=["code", "product", "position", "status", "filename", "format", "mime",
                 "width", "height", "file_size", "sha256", "phash", "blurhash", "color",
                 "alt", "importer_id", "importer", "imported_at", "updated_at"],
    )
    # What autovacuum does soon after a bulk load: statistics, and the visibility map that lets
    # count(*) for `total` run as an index-only scan instead of reading the table.
    await conn.execute("VACUUM ANALYZE images")


def _query(case: dict) -> images.ListQuery:
    args = dict(case)
    if args.get("since") == "30d":
        args["since"] = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    return images.ListQuery(**args)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_use_case(url: str, runs: int) -> list[tuple[str, float, float, int]]:
    pool = await db.create_pool(url, 1, 4)
    results = []
    try:
        for name, case in CASES:
            query = _query(case)
            timings = []
            total = 0
            for i in range(runs + 10):
                async with pool.acquire() as conn:
                    started = time.perf_counter()
                    _rows, total = await images.list_images(conn, query)
                    elapsed = (time.perf_counter() - started) * 1000
                if i >= 10:  # warm-up: the first calls prepare statements
                    timings.append(elapsed)
            results.append((name, statistics.median(timings), _pct(timings, 95), total))
    finally:
        await pool.close()
    return results


async def bench_http(url: str, runs: int) -> list[tuple[str, float, float]]:
    """The same listings through aiohttp (guard, JSON of 50 records), in process."""
    from aiohttp.test_utils import TestClient, TestServer

    from ecogram.app import create_app
    from ecogram.settings import Settings

    settings = Settings.from_env({}, database_url=url, secret_key="b" * 48,
                                 data_dir=Path("/tmp/ecogram-bench"))
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    results = []
    try:
        creds = {"email": "admin@bench.example", "name": "Admin", "password": "bench pass 12345"}
        await client.post("/api/v1/auth/register", json=creds)
        token = (await (await client.post("/api/v1/auth/login", json=creds)).json())[
            "access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for name, query in [("GET /api/v1/images", ""),
                            ("GET ?status=pending&sort=code", "?status=pending&sort=code"),
                            ("GET ?q=leather", "?q=leather"),
                            ("GET ?per_page=100", "?per_page=100")]:
            timings = []
            for i in range(runs + 10):
                started = time.perf_counter()
                response = await client.get(f"/api/v1/images{query}", headers=headers)
                await response.read()
                assert response.status == 200, await response.text()
                if i >= 10:
                    timings.append((time.perf_counter() - started) * 1000)
            results.append((name, statistics.median(timings), _pct(timings, 95)))
    finally:
        await client.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = f"ecogram_listbench_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(args.server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(args.server, name)
    try:
        conn = await db.connect(url)
        try:
            await db.migrate(conn)
            trgm = await conn.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'images_search_trgm'")
            started = time.perf_counter()
            await fill(conn, args.rows)
            print(f"filled {args.rows} rows in {time.perf_counter() - started:.1f} s; "
                  f"PostgreSQL {await conn.fetchval('SHOW server_version')}; "
                  f"pg_trgm index: {'yes' if trgm else 'no'}")
        finally:
            await conn.close()
        print(f"\nuse case (list_images: page + total), {args.runs} runs each")
        print(f"{'case':40} {'p50 ms':>8} {'p95 ms':>8} {'total':>8}")
        for case, p50, p95, total in await bench_use_case(url, args.runs):
            print(f"{case:40} {p50:8.2f} {p95:8.2f} {total:8d}")
        print(f"\nHTTP, in process (guard + JSON of the page), {args.runs} runs each")
        print(f"{'request':40} {'p50 ms':>8} {'p95 ms':>8}")
        try:
            http = await bench_http(url, args.runs)
        except Exception as exc:  # the app may not start in a half-built tree; say why
            print(f"skipped: the app did not start ({type(exc).__name__}: {exc})")
            http = []
        for case, p50, p95 in http:
            print(f"{case:40} {p50:8.2f} {p95:8.2f}")
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
