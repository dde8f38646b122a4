"""Ten slow export downloads, and how /img and the API answer beside them (issue 11).

Starts ``python -m ecogram serve`` (the code on PYTHONPATH: run it once on the old code and once
on the new) on a fresh database with a pool of three connections, imports one photo through
the API, adds N approved one-photo products with long names (about 850 bytes of Shopify CSV
each), then starts C Shopify exports whose clients read 8 KB every 5 ms through a 4 KB receive
buffer. While they download, it asks ``/img`` and ``/api/v1/images`` in turn and prints the
latencies (p50, p95, max) and how long the downloads took. ``/img`` is asked twice: a warm
address (served from memory, no database) and a cold one (a photo not served before: its
record and master come from the database, then a render).

    PYTHONPATH=. .venv/bin/python bench/export_bench.py [--rows 10000] [--clients 10]
        [--server postgresql://postgres@127.0.0.1:5432/postgres] [--port 8391]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

import aiohttp
import asyncpg
import pyvips

PASSWORD = "correct horse battery staple"


def _small_receive_buffer(addr_info) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def _photo() -> bytes:
    image = pyvips.Image.black(800, 800, bands=3).new_from_image([255, 255, 255]).cast("uchar")
    image = image.draw_rect([200, 30, 30], 100, 100, 300, 400, fill=True)
    return image.jpegsave_buffer(Q=90)


async def _setup(session: aiohttp.ClientSession, base: str, url: str, rows: int) -> dict:
    body = {"email": "admin@example.com", "name": "Bench Admin", "password": PASSWORD}
    await session.post(f"{base}/api/v1/auth/register", json=body)
    login = await session.post(f"{base}/api/v1/auth/login",
                               json={"email": body["email"], "password": PASSWORD})
    headers = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    form = aiohttp.FormData()
    form.add_field("file", _photo(), filename="img-1.jpg", content_type="image/jpeg")
    form.add_field("code", "IMG-1")
    response = await session.post(f"{base}/api/v1/images", data=form, headers=headers)
    record = (await response.json())["items"][0]["record"]
    response = await session.post(f"{base}/api/v1/images/{record['id']}/approve", json={},
                                  headers=headers)
    assert response.status == 200, await response.text()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO images (code, product, position, status, filename, format, mime, "
            "width, height, file_size, sha256, phash, blurhash, color, importer) "
            "SELECT 'BULK-' || lpad(g::text, 6, '0'), repeat('Bulk product ', 30) || g, 1, "
            "'approved', 'a.jpg', 'jpeg', 'image/jpeg', 800, 800, 10, md5(g::text), 0, 'L', "
            "'#ffffff', 'bench' FROM generate_series(1, $1) g", rows)
        # The first thousand products get IMG-1's original: /img of one not served before
        # reads the database (its record and master), as a cold request does.
        await conn.execute(
            "INSERT INTO originals (image_id, store, master_sha256, master_format, master_width, "
            "master_height) SELECT i.id, o.store, o.master_sha256, o.master_format, "
            "o.master_width, o.master_height FROM images i, originals o WHERE o.image_id = $1 "
            "AND i.code BETWEEN 'BULK-000001' AND 'BULK-001000'", record["id"])
        await conn.execute("ANALYZE images")
    finally:
        await conn.close()
    return headers


async def _download(url: str, headers: dict) -> tuple[int, float]:
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.get(url, headers=headers) as response:
        size = 0
        while chunk := await response.content.read(8192):
            size += len(chunk)
            await asyncio.sleep(0.005)
    return size, time.perf_counter() - started


async def _probe(session, url: str, headers: dict | None, times: list[float]) -> None:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status
    times.append(time.perf_counter() - started)


def _summary(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (f"{name}: n={len(ms)} p50={statistics.median(ms):.1f} ms p95={p95:.1f} ms "
            f"max={ms[-1]:.1f} ms")


async def bench(args: argparse.Namespace, url: str) -> None:
    base = f"http://127.0.0.1:{args.port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        headers = await _setup(session, base, url, args.rows)
        img = f"{base}/img/IMG-1/1?w=400"
        api = f"{base}/api/v1/images?per_page=5"
        cold = (f"{base}/img/BULK-{n:06d}/1?w=400" for n in range(1, 1001))
        idle_img: list[float] = []
        idle_cold: list[float] = []
        idle_api: list[float] = []
        for _ in range(20):
            await _probe(session, img, None, idle_img)
            await _probe(session, next(cold), None, idle_cold)
            await _probe(session, api, headers, idle_api)
        print(_summary("idle /img warm", idle_img))
        print(_summary("idle /img cold", idle_cold))
        print(_summary("idle /api/v1/images", idle_api))
        downloads = [asyncio.create_task(_download(f"{base}/api/v1/exports/shopify", headers))
                     for _ in range(args.clients)]
        busy_img: list[float] = []
        busy_cold: list[float] = []
        busy_api: list[float] = []
        await asyncio.sleep(0.5)
        while not all(d.done() for d in downloads):
            await _probe(session, img, None, busy_img)
            await _probe(session, next(cold), None, busy_cold)
            await _probe(session, api, headers, busy_api)
            await asyncio.sleep(0.05)
        results = [d.result() for d in downloads]
        print(f"{args.clients} slow downloads: {results[0][0] / 1e6:.1f} MB each, "
              f"{min(r[1] for r in results):.1f}-{max(r[1] for r in results):.1f} s")
        print(_summary(f"/img warm during {args.clients} slow downloads", busy_img))
        print(_summary(f"/img cold during {args.clients} slow downloads", busy_cold))
        print(_summary(f"/api/v1/images during {args.clients} slow downloads", busy_api))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"ecogram_export_bench_{secrets.token_hex(3)}"
    parts = urllib.parse.urlsplit(args.server)
    url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "DATABASE_URL": url, "ECOGRAM_PORT": str(args.port),
           "ECOGRAM_DB_POOL_MAX": "3", "ECOGRAM_MAX_EXPORTS": str(args.clients),
           "ECOGRAM_SECRET_KEY": secrets.token_urlsafe(48), "ECOGRAM_MIN_SIDE": "100",
           "ECOGRAM_LOG_LEVEL": os.environ.get("ECOGRAM_LOG_LEVEL", "warning")}
    server = subprocess.Popen([sys.executable, "-m", "ecogram", "serve"], env=env)
    try:
        asyncio.run(bench(args, url))
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
