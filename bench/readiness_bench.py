"""Channel readiness at shop scale: 100,000 photos × the ten shipped channels.

Creates a fresh database, migrates it, fills it with N image rows by COPY (as
bench/list_bench.py does: 1–8 photos per code, 60 % approved) and a geometry row for 95 % of them
(white, near-white or other backgrounds, fills from 0.5 to 1), then times the readiness use case
(``ecogram.catalog.channels.readiness``: one page, the total and the summary) for every channel
and a few filters, and prints p50/p95 per case with the CPU time each call costs (database
backend and this process, from /proc: what the figure would be with a core to itself). A
second pass times the HTTP request.

    .venv/bin/python bench/readiness_bench.py [--rows 100000] [--runs 50]
        [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.list_bench import _pct, _with_db, fill
from ecogram import db
from ecogram.catalog import channels
from ecogram.channels import load_profiles

SIDES = [(400, 400), (800, 800), (1200, 1200), (1600, 1200), (2000, 2000), (3000, 3000)]
FORMATS = ["jpeg"] * 8 + ["png", "webp"]

CASES: list[tuple[str, dict]] = [
    ("page 1", {}),
    ("ready=false", {"ready": False}),
    ("ready=true, page 20", {"ready": True, "page": 20}),
    ("status=all, per_page=100", {"status": "all", "per_page": 100}),
    ("code=SKU-004242", {"codes": ("SKU-004242",)}),
]


async def vary(conn: asyncpg.Connection) -> None:
    """Give the rows realistic sizes and formats, and geometry for most of them."""
    rnd = random.Random(7)
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM images ORDER BY id")]
    sizes = []
    geometry = []
    for image_id in ids:
        width, height = rnd.choice(SIDES)
        sizes.append((image_id, width, height, rnd.choice(FORMATS)))
        if rnd.random() < 0.95:
            background = rnd.choices(["white", "near_white", "other"], [6, 2, 2])[0]
            geometry.append((image_id, background, rnd.uniform(0.5, 1.0)))
    await conn.execute("CREATE TEMP TABLE sizes (id bigint, width int, height int, format text)")
    await conn.copy_records_to_table("sizes", records=sizes)
    await conn.execute("UPDATE images i SET width = s.width, height = s.height, format = s.format "
                       "FROM sizes s WHERE s.id = i.id")
    await conn.execute("CREATE TEMP TABLE geo (image_id bigint, background text, fill real)")
    await conn.copy_records_to_table("geo", records=geometry)
    await conn.execute(
        "INSERT INTO image_geometry (image_id, sha256, background, fill, box_left, box_top, "
        "box_width, box_height, border) SELECT g.image_id, i.sha256, g.background, g.fill, 0, 0, "
        "i.width, i.height, '#ffffff' FROM geo g JOIN images i ON i.id = g.image_id")
    await conn.execute("VACUUM ANALYZE images")
    await conn.execute("VACUUM ANALYZE image_geometry")


def _cpu_ticks(pid: int) -> int | None:
    """User + system CPU time of a process, in clock ticks (/proc; None when unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


async def bench_use_case(url: str, runs: int) -> list[tuple[str, str, float, float, int, str]]:
    """Wall time per call (p50, p95), and the CPU time per call of the database backend plus
    this process: on a busy machine the wall time mostly measures the wait for a core."""
    pool = await db.create_pool(url, 1, 4)
    profiles = load_profiles()
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    results = []
    try:
        for channel, profile in profiles.items():
            for name, case in CASES:
                query = channels.ReadinessQuery(**case)
                timings = []
                total = 0
                async with pool.acquire() as conn:
                    backend = await conn.fetchval("SELECT pg_backend_pid()")
                    for _ in range(3):  # warm-up
                        await channels.readiness(conn, profile, query, "pt_BR")
                    ticks, own = _cpu_ticks(backend), time.process_time()
                    for _ in range(runs):
                        started = time.perf_counter()
                        page = await channels.readiness(conn, profile, query, "pt_BR")
                        timings.append((time.perf_counter() - started) * 1000)
                        total = page["total"]
                    after = _cpu_ticks(backend)
                    own = (time.process_time() - own) * 1000
                cpu = "-" if ticks is None or after is None else \
                    f"{((after - ticks) * tick_ms + own) / runs:.1f}"
                results.append((channel, name, statistics.median(timings), _pct(timings, 95),
                                total, cpu))
    finally:
        await pool.close()
    return results


async def bench_http(url: str, runs: int) -> list[tuple[str, float, float]]:
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
        headers = {"Authorization": f"Bearer {token}", "Accept-Language": "pt-BR"}
        for channel in ("mercadolivre", "google", "vtex"):
            for suffix in ("", "?ready=false&per_page=100"):
                path = f"/api/v1/channels/{channel}/readiness{suffix}"
                timings = []
                for i in range(runs + 3):
                    started = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    await response.read()
                    assert response.status == 200, await response.text()
                    if i >= 3:
                        timings.append((time.perf_counter() - started) * 1000)
                results.append((f"GET {path[len('/api/v1/channels/'):]}",
                                statistics.median(timings), _pct(timings, 95)))
    finally:
        await client.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP pass")
    args = parser.parse_args()

    name = f"ecogram_readybench_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(args.server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(args.server, name)
    try:
        conn = await db.connect(url)
        try:
            await db.migrate(conn)
            started = time.perf_counter()
            # A bulk load skips the per-row triggers, then builds channel_products at once.
            await conn.execute("SET session_replication_role = replica")
            await fill(conn, args.rows)
            await vary(conn)
            await conn.execute("SET session_replication_role = DEFAULT")
            await conn.execute("SELECT channel_products_rebuild()")
            await conn.execute("VACUUM ANALYZE channel_products")  # and its partitions
            codes = await conn.fetchval("SELECT count(DISTINCT code) FROM images")
            print(f"filled {args.rows} photos of {codes} products in "
                  f"{time.perf_counter() - started:.1f} s; "
                  f"PostgreSQL {await conn.fetchval('SHOW server_version')}")
        finally:
            await conn.close()
        print(f"\nuse case (readiness: page + total + summary), {args.runs} runs each")
        print(f"{'channel':14} {'case':28} {'p50 ms':>8} {'p95 ms':>8} {'total':>8} "
              f"{'cpu ms':>8}")
        worst = 0.0
        for channel, case, p50, p95, total, cpu in await bench_use_case(url, args.runs):
            worst = max(worst, p95)
            print(f"{channel:14} {case:28} {p50:8.2f} {p95:8.2f} {total:8d} {cpu:>8}")
        print(f"worst p95: {worst:.2f} ms")
        if not args.no_http:
            print(f"\nHTTP, in process (guard + JSON of the page), {args.runs} runs each")
            print(f"{'request':50} {'p50 ms':>8} {'p95 ms':>8}")
            for case, p50, p95 in await bench_http(url, args.runs):
                print(f"{case:50} {p50:8.2f} {p95:8.2f}")
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
