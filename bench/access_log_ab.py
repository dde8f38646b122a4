"""A/B of the access log (and delivery analytics) under wrk: `ecogram serve` at
ECOGRAM_LOG_LEVEL=info, one worker pinned to core 0, stderr a pipe, warm /img (one WebP size
answered from memory); wrk pinned to core 1, 8 s × 3 rounds, interleaved.

    git archive <base-commit> | tar -x -C /tmp/ab-base   # the code before
    PYTHONPATH=. .venv/bin/python bench/access_log_ab.py /tmp/ab-base

Servers: "before" (the checkout given), "after" (this checkout), "after_no_analytics" (this
checkout, ECOGRAM_ANALYTICS_FLUSH=0). Each gets its own throw-away database on
ECOGRAM_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/).

Prints, per server and round, req/s and the server's CPU time per request in µs (user + system
of all its threads, the log listener included, from /proc during the wrk run): the figure to
compare when other work shares core 0 and moves req/s.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.catalog.photos import make_photo  # noqa: E402  (the checkout on sys.path first)

PY = sys.executable
POSTGRES = os.environ.get("ECOGRAM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/")


async def mkdb(name):
    c = await asyncpg.connect(POSTGRES + "postgres")
    await c.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await c.execute(f'CREATE DATABASE "{name}"')
    await c.close()
    return POSTGRES + name


def start(root, db, port, log, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOGRAM_") and k != "REDIS_URL"}
    env.update(
        PYTHONPATH=root,
        DATABASE_URL=db,
        ECOGRAM_SECRET_KEY="x" * 40,
        ECOGRAM_DATA_DIR=f"/tmp/ab-data-{port}",
        ECOGRAM_MIN_SIDE="100",
        ECOGRAM_LOG_LEVEL="info",
        ECOGRAM_EAGER_WIDTHS="",
        ECOGRAM_CHANNELS="",
    )
    env.update(extra or {})
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            PY,
            "-m",
            "ecogram",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def setup(url):
    for _ in range(100):
        try:
            async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
                if r.status == 200:
                    break
        except Exception:
            pass
        await asyncio.sleep(0.3)
    async with aiohttp.ClientSession(url) as s:
        acct = {"email": "a@example.com", "name": "A", "password": "correct horse battery staple"}
        await s.post("/api/v1/auth/register", json=acct)
        async with s.post(
            "/api/v1/auth/login", json={"email": acct["email"], "password": acct["password"]}
        ) as r:
            tok = (await r.json())["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        f = aiohttp.FormData()
        f.add_field("file", make_photo(3), filename="SKU-1.jpg", content_type="image/jpeg")
        async with s.post("/api/v1/images", data=f, headers=h) as r:
            rid = (await r.json())["items"][0]["record"]["id"]
        async with s.post(f"/api/v1/images/{rid}/approve", json={"reason": "ok"}, headers=h) as r:
            assert r.status == 200, await r.text()
        async with s.get("/img/SKU-1?w=200", headers={"Accept": "image/webp"}) as r:
            assert r.status == 200


def cpu_seconds(pid):
    """User + system CPU of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, pid):
    """(req/s, CPU µs per request of the server) of one 8 s run."""
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c32",
            "-d8s",
            "-H",
            "Accept: image/webp",
            url + "/img/SKU-1?w=200",
        ],
        capture_output=True,
        text=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out)[1])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    return rate, round(cpu / requests * 1e6, 1)


async def main():
    procs = {}
    for name, root, port, extra in (
        ("before", sys.argv[1], 18101, {}),
        ("after", str(ROOT), 18102, {}),
        ("after_no_analytics", str(ROOT), 18103, {"ECOGRAM_ANALYTICS_FLUSH": "0"}),
    ):
        db = await mkdb(f"ecogram_ab_{name}")
        p = start(root, db, port, None, extra)
        # drain stderr through a pipe reader (a real pipe, as under a process manager)
        drain = subprocess.Popen(  # noqa: ASYNC220  (a bench: blocking the loop is fine)
            ["cat"], stdin=p.stderr, stdout=subprocess.DEVNULL
        )
        procs[name] = (p, drain, f"http://127.0.0.1:{port}")
        await setup(procs[name][2])
    results = {n: [] for n in procs}
    for _ in range(3):
        for name in procs:
            results[name].append(wrk(procs[name][2], procs[name][0].pid))
    for p, d, _ in procs.values():
        p.terminate()
        p.wait(30)
        d.wait(5)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
