"""Import benchmark: 1,000 distinct ~2 MP photos in one ZIP through POST /api/v1/imports.

One command, from a fresh clone (see bench/README.md, "Import"):

    .venv/bin/python bench/import_bench.py [--count 1000] [--server-url postgresql://...]

It generates the photos with pyvips from bench/images/ (random crops, tints and flips, so every
sha256 and perceptual hash differs), zips them (stored: JPEGs do not deflate), creates a fresh
database on the local PostgreSQL, starts a real `ecogram serve` on it with every check on
(default settings: ECOGRAM_MIN_SIDE 500, near-duplicates, masters...), registers a user, uploads
the ZIP, and measures end to end: from the first byte sent to the 201 report. The server's peak
RSS (the process tree, sampled every 20 ms with psutil) is recorded too. The database is dropped
at the end. Writes bench/results/import-<date>-<time>.json.

``--job N`` runs it as an import job instead: the server runs no jobs itself
(ECOGRAM_JOB_WORKERS=0), N ``ecogram worker`` processes do; the ZIP (or ``--imports K`` ZIPs of
an equal share of the photos, uploaded at once) goes with ``Prefer: respond-async`` (202), and
the time runs from the first byte sent to the last report ``done``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pyvips

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
IMAGES = BENCH / "images"
RESULTS = BENCH / "results"
SOURCES = ("photo1.jpg", "photo2.jpg", "product.jpg", "noise.jpg")
# Noise is the worst case for JPEG (2.5 MB at 2 MP): one photo in ten, like a few hard shots.
WEIGHTS = (4, 3, 2, 1)
SHAPES = ((1632, 1224), (1224, 1632), (1440, 1440), (1728, 1152))  # about 2 MP each
PASSWORD = "bench-password-0123456789"


def load_sources() -> list[pyvips.Image]:
    sources = []
    for name in SOURCES:
        image = pyvips.Image.new_from_file(str(IMAGES / name), access="sequential")
        sources.append(image.copy_memory())
    return sources


def make_photo(sources: list[pyvips.Image], seed: int) -> bytes:
    rnd = random.Random(seed)
    source = rnd.choices(sources, weights=WEIGHTS)[0]
    width, height = rnd.choice(SHAPES)
    # The largest crop of the target's aspect that fits, scaled down by a random factor.
    scale = min(source.width / width, source.height / height)
    factor = scale * rnd.uniform(0.55, 1.0)
    cw, ch = max(width // 2, int(width * factor)), max(height // 2, int(height * factor))
    cw, ch = min(cw, source.width), min(ch, source.height)
    x, y = rnd.randrange(0, source.width - cw + 1), rnd.randrange(0, source.height - ch + 1)
    image = source.crop(x, y, cw, ch).resize(width / cw, vscale=height / ch)
    tint = [rnd.uniform(0.8, 1.15) for _ in range(3)]
    image = (image * tint + [rnd.randrange(-12, 13) for _ in range(3)]).cast("uchar")
    if rnd.random() < 0.5:
        image = image.fliphor()
    return image.jpegsave_buffer(Q=rnd.choice((82, 86, 90)), keep="none")


def build_zip(path: Path, count: int) -> tuple[int, float]:
    started = time.perf_counter()
    sources = load_sources()
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, \
            ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        # 250 products of 4 photos each: the near-duplicate check has neighbours to compare.
        for i, data in enumerate(pool.map(lambda s: make_photo(sources, s), range(count))):
            archive.writestr(f"BENCH-{i // 4:04d}_{i % 4 + 1}.jpg", data)
            total += len(data)
    return total, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PeakRss(threading.Thread):
    """Samples the RSS of processes (the server, the workers) and their children; keeps the
    peak."""

    def __init__(self, *pids: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.peak = 0
        self.idle = 0
        self._halt = threading.Event()

    def sample(self) -> int:
        total = 0
        for process in self.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                for proc in (process, *process.children(recursive=True)):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += proc.memory_info().rss
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def wait_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]  # noqa: ASYNC240 - failing anyway
                raise RuntimeError(f"the server exited ({server.returncode}):\n{tail}")
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


async def upload(base: str, zip_path: Path) -> tuple[dict, float]:
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        user = {"email": "bench@example.com", "name": "Bench", "password": PASSWORD}
        async with session.post(f"{base}/api/v1/auth/register", json=user) as response:
            assert response.status == 201, await response.text()
        async with session.post(f"{base}/api/v1/auth/login", json=user) as response:
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        with zip_path.open("rb") as handle:
            data = aiohttp.FormData()
            data.add_field("archive", handle, filename="bench.zip",
                           content_type="application/zip")
            started = time.perf_counter()
            async with session.post(f"{base}/api/v1/imports", data=data,
                                    headers=headers) as response:
                body = await response.json()
                elapsed = time.perf_counter() - started
        assert response.status == 201, body
        return body, elapsed


def split_zip(zip_path: Path, parts: int, workdir: Path) -> list[Path]:
    """The archive's members in ``parts`` archives of an equal share (products kept whole)."""
    if parts == 1:
        return [zip_path]
    paths = [workdir / f"part-{n}.zip" for n in range(parts)]
    with zipfile.ZipFile(zip_path) as source:
        infos = source.infolist()
        share = -(-len(infos) // parts)
        share += -share % 4  # 4 photos a product: a product in one part
        for n, path in enumerate(paths):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as part:
                for info in infos[n * share:(n + 1) * share]:
                    part.writestr(info, source.read(info))
    return paths


async def upload_jobs(base: str, zip_paths: list[Path]) -> tuple[list[dict], float, float]:
    """Upload every ZIP at once with Prefer: respond-async; poll each report until done.
    The reports, the seconds until the last 202, and until the last report was done."""
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        user = {"email": "bench@example.com", "name": "Bench", "password": PASSWORD}
        async with session.post(f"{base}/api/v1/auth/register", json=user) as response:
            assert response.status == 201, await response.text()
        async with session.post(f"{base}/api/v1/auth/login", json=user) as response:
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()

        async def one(path: Path) -> tuple[str, float]:
            with path.open("rb") as handle:
                data = aiohttp.FormData()
                data.add_field("archive", handle, filename=path.name,
                               content_type="application/zip")
                async with session.post(f"{base}/api/v1/imports", data=data,
                                        headers={**headers, "Prefer": "respond-async"}) as r:
                    body = await r.json()
            assert r.status == 202, body
            return r.headers["Location"], time.perf_counter() - started

        queued = await asyncio.gather(*(one(path) for path in zip_paths))
        accepted_at = max(seconds for _, seconds in queued)
        reports = []
        for location, _ in queued:
            while True:
                async with session.get(base + location, headers=headers) as response:
                    report = await response.json()
                if report["status"] in ("done", "interrupted"):
                    break
                await asyncio.sleep(0.2)
            reports.append(report)
        return reports, accepted_at, time.perf_counter() - started


async def create_db(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_db(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def backend_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += sum(psutil.Process(pid).cpu_times()[:2])
    return total


async def db_sizes(url: str) -> dict:
    conn = await asyncpg.connect(url)
    try:
        # The server's pool connections to this database: their CPU is the database's share
        # of the work (load-independent, unlike wall time on a busy machine).
        pids = [r["pid"] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]
        row = await conn.fetchrow(
            "SELECT count(*) AS images, sum(file_size) AS bytes, "
            "count(*) FILTER (WHERE jsonb_array_length(qc->'warnings') > 0) AS with_warnings "
            "FROM images")
        return {**dict(row), "postgres_cpu_seconds": backend_cpu_seconds(pids)}
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--server-url", default=os.environ.get(
        "ECOGRAM_BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--zip", type=Path, help="reuse (or keep) the generated ZIP here")
    parser.add_argument("--job", type=int, default=0, metavar="N",
                        help="run as an import job on N `ecogram worker` processes "
                             "(default 0: in the request)")
    parser.add_argument("--imports", type=int, default=1, metavar="K",
                        help="with --job: split the photos into K ZIPs, uploaded at once")
    args = parser.parse_args()

    pyvips.cache_set_max(0)
    workdir = Path(tempfile.mkdtemp(prefix="ecogram-import-bench-"))
    zip_path = args.zip or workdir / "bench.zip"
    if zip_path.exists():
        with zipfile.ZipFile(zip_path) as existing:
            photo_bytes = sum(i.file_size for i in existing.infolist())
        gen_seconds = 0.0
        print(f"reusing {zip_path}", file=sys.stderr)
    else:
        print(f"generating {args.count} photos...", file=sys.stderr)
        photo_bytes, gen_seconds = build_zip(zip_path, args.count)
    print(f"zip: {zip_path.stat().st_size / 1e6:.0f} MB ({gen_seconds:.0f} s to generate)",
          file=sys.stderr)

    # Other work on the machine skews every figure: the load average goes into the result.
    load_before = [round(x, 2) for x in os.getloadavg()]
    name = f"ecogram_bench_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(create_db(args.server_url, name))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ECOGRAM_")},
        "DATABASE_URL": with_database(args.server_url, name),
        "ECOGRAM_SECRET_KEY": secrets.token_urlsafe(48),
        "ECOGRAM_DATA_DIR": str(workdir / "data"),
        "ECOGRAM_LOG_LEVEL": "warning",
    }
    if args.job:
        env["ECOGRAM_JOB_WORKERS"] = "0"  # the workers below run the jobs, not the server
    else:
        # In the request, as measured before import jobs existed: by default an import this
        # large (over ECOGRAM_IMPORT_ASYNC_FILES / _MB) would be queued as a job.
        env["ECOGRAM_IMPORT_ASYNC_FILES"] = env["ECOGRAM_IMPORT_ASYNC_MB"] = "1000000"
    with (workdir / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ecogram", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
    workers: list[subprocess.Popen] = []
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, server, workdir / "server.log"))
        for n in range(args.job):
            with (workdir / f"worker-{n}.log").open("w") as log:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "ecogram", "worker", "--jobs", "1"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log))
        time.sleep(3 if workers else 0)  # the workers connect and listen
        pids = [server.pid, *(w.pid for w in workers)]
        rss = PeakRss(*pids)
        idle_rss = rss.sample()
        rss.start()
        cpu_before = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)
        if args.job:
            parts = split_zip(zip_path, args.imports, workdir)
            reports, accepted_at, elapsed = asyncio.run(upload_jobs(base, parts))
        else:
            report, elapsed = asyncio.run(upload(base, zip_path))
            reports, accepted_at = [report], None
        rss.stop()
        cpu_after = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)
        stats = asyncio.run(db_sizes(env["DATABASE_URL"]))
    finally:
        for process in (*workers, server):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(drop_db(args.server_url, name))

    report = {k: sum(r[k] for r in reports) for k in ("accepted", "duplicate", "rejected")}
    report["items"] = [line for r in reports for line in r["items"]]
    report["created_at"] = min(r["created_at"] for r in reports)
    report["finished_at"] = max(r["finished_at"] for r in reports)
    report["statuses"] = sorted({r["status"] for r in reports})
    processing = (dt.datetime.fromisoformat(report["finished_at"])
                  - dt.datetime.fromisoformat(report["created_at"])).total_seconds()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before,
                    "python": platform.python_version(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "mode": (f"job, {args.job} worker{'s' if args.job > 1 else ''}, "
                 f"{args.imports} import{'s' if args.imports > 1 else ''}"
                 if args.job else "in the request"),
        "statuses": report["statuses"],
        # Each batch's own span: one worker runs two imports one after the other, two at once.
        "batches": [{"files": len(r["items"]), "created_at": r["created_at"],
                     "finished_at": r["finished_at"]} for r in reports],
        "photos": args.count,
        "zip_mb": round(zip_path.stat().st_size / 1e6, 1),
        "photo_mb": round(photo_bytes / 1e6, 1),
        "accepted": report["accepted"],
        "duplicate": report["duplicate"],
        "rejected": report["rejected"],
        "with_warnings": stats["with_warnings"],
        "seconds": round(elapsed, 2),
        # The batch runs once the whole ZIP is on the server (its directory is at the end):
        # the rest of the end-to-end time is the upload, streamed to a temporary file.
        "processing_seconds": round(processing, 2),
        "upload_seconds": round(elapsed - processing, 2),
        # A job: the time until the last 202 (the upload stored in PostgreSQL, the job queued).
        "accepted_202_seconds": round(accepted_at, 2) if accepted_at is not None else None,
        "photos_per_second": round(report["accepted"] / elapsed, 1),
        "server_cpu_seconds": round(cpu_after - cpu_before, 1),  # server + workers
        "postgres_cpu_seconds": round(stats["postgres_cpu_seconds"], 1),
        # CPU per photo (server + its database backends): 2 cores / this = the ceiling on an
        # otherwise idle 2-core machine, whatever else was running during the measurement.
        "cpu_ms_per_photo": round(
            (cpu_after - cpu_before + stats["postgres_cpu_seconds"]) / args.count * 1000, 1),
        "server_idle_rss_mb": round(idle_rss / 2**20),  # server + workers
        "server_peak_rss_mb": round(rss.peak / 2**20),
    }
    rejected = [line for line in report["items"] if line["outcome"] == "rejected"][:5]
    if rejected:
        result["first_rejections"] = [(r["filename"], r["code"]) for r in rejected]
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    (RESULTS / f"import-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.zip:
        zip_path.unlink(missing_ok=True)
    return 0 if report["rejected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
