"""Several `ecogram serve` instances on one PostgreSQL and one Redis behave as one service.

Two real `python -m ecogram serve` processes, each on its own port with its own data directory,
share a database created empty for this module, one Redis (under a key prefix of this run) and
the secret key — what docs/scaling.md asks of a deployment. They start at the same moment, so
both race to migrate. Then every change made through instance A (approve, replace, reject,
delete, reorder) must show in `/img` on instance B within a second, with B's caches warm
beforehand; a variant rendered by A is served by B from Redis; failed sign-ins on A count on B;
and B stays exact while its LISTEN connection is cut and re-made.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest
import redis as redis_sync

from ecogram import db
from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD, TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_FAILURES = 3  # ECOGRAM_LOGIN_MAX_FAILURES of both instances
WITHIN = 1.0  # seconds: how soon a change on A must show on B (the figure)
GIVE_UP = 10.0  # seconds of polling before a check fails (the measured delay is still reported)
ADMIN = {"email": "ada@example.com", "name": "Ada Admin", "password": PASSWORD}


# --- the instances ----------------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies (even by SIGKILL), so a
    crashed run leaves no server behind. Linux only; elsewhere the fixture's cleanup does."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Instance:
    name: str
    proc: subprocess.Popen
    log: Path
    url: str = ""
    seen: int = 0  # log lines already checked for 5xx answers

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"text": raw}
            out.append(line if isinstance(line, dict) else {"text": raw})
        return out

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines() if line.get("event") == name]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole process group; always waits for the exit."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything of its group still there
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Pair:
    a: Instance
    b: Instance
    database_url: str
    prefix: str
    token: dict[str, str] = field(default_factory=dict)  # the admin's Authorization header


def _first_line(proc: subprocess.Popen, deadline: float) -> str:
    data = b""
    while not data.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace")


def _start(name: str, database_url: str, prefix: str, tmp: Path) -> Instance:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("ECOGRAM_") and k not in ("REDIS_URL", "DATABASE_URL")}
    environ.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ECOGRAM_REDIS_PREFIX": prefix,
        # Shared by every instance of a deployment: tokens and signed URLs of one are valid on
        # the others. The data directory is each instance's own.
        "ECOGRAM_SECRET_KEY": TEST_SECRET,
        "ECOGRAM_DATA_DIR": str(tmp / f"data-{name}"),
        "ECOGRAM_MIN_SIDE": "100",
        "ECOGRAM_ALLOWED_SIZES": "*",
        "ECOGRAM_EAGER_FORMATS": "webp",
        "ECOGRAM_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "ECOGRAM_RENDER_THREADS": "1",
        "ECOGRAM_DB_POOL_MAX": "4",
    })
    log = tmp / f"serve-{name}.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecogram", "serve", "--host", "127.0.0.1", "--port", "0"],
            env=environ, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
    return Instance(name, proc, log)


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


async def _register_admin(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession(url) as http:
        async with http.post("/api/v1/auth/register", json=ADMIN) as response:
            assert response.status == 201, await response.text()
            assert (await response.json())["role"] == "admin"
        login = {"email": ADMIN["email"], "password": ADMIN["password"]}
        async with http.post("/api/v1/auth/login", json=login) as response:
            assert response.status == 200, await response.text()
            return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


@pytest.fixture(scope="module")
def pair(server_url: str, tmp_path_factory) -> Iterator[Pair]:
    """Instances A and B, started at the same moment on a database that has no schema yet."""
    tmp = tmp_path_factory.mktemp("instances")
    name = f"ecogram_instances_{os.getpid()}_{secrets.token_hex(3)}"
    database_url = _with_database(server_url, name)
    prefix = f"ecogram-test-{secrets.token_hex(6)}"
    asyncio.run(_create_database(server_url, name))
    started: list[Instance] = []
    try:
        started = [_start(n, database_url, prefix, tmp) for n in ("a", "b")]
        deadline = time.monotonic() + 90
        for instance in started:
            line = _first_line(instance.proc, deadline)
            match = re.search(r"http://[^\s;,()]+", line)
            assert match, f"{instance.name}: no URL in {line!r}: {instance.log.read_text()}"
            instance.url = match[0]
        for instance in started:
            while _status(instance.url + "/readyz") != 200:
                assert instance.proc.poll() is None and time.monotonic() < deadline, \
                    instance.log.read_text()
                time.sleep(0.1)
        a, b = started
        assert a.url != b.url
        yield Pair(a, b, database_url, prefix, asyncio.run(_register_admin(a.url)))
    finally:
        for instance in started:
            instance.stop()
        asyncio.run(_drop_database(server_url, name))
        raw = redis_sync.Redis.from_url(REDIS_URL)
        try:
            left = list(raw.scan_iter(f"{prefix}:*"))
            if left:
                raw.delete(*left)
        finally:
            raw.close()


def _status(url: str) -> int:
    async def go() -> int:
        async with aiohttp.ClientSession() as http, http.get(
            url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status

    try:
        return asyncio.run(go())
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0


@pytest.fixture(autouse=True)
def no_5xx_from_the_instances(pair: Pair) -> Iterator[None]:
    """Neither instance answers 5xx or logs an unhandled error during a test."""
    yield
    for instance in (pair.a, pair.b):
        lines = instance.lines()
        new, instance.seen = lines[instance.seen:], len(lines)
        bad = [line for line in new if line.get("event") == "unhandled_error" or (
            line.get("event") == "request" and isinstance(line.get("status"), int)
            and line["status"] >= 500)]
        assert not bad, f"instance {instance.name} failed: {bad[:3]}"
        assert instance.proc.poll() is None, f"instance {instance.name} exited"


# --- helpers ----------------------------------------------------------------------------------

class Client:
    """One instance's HTTP API, as the admin."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: dict[str, str]) -> None:
        self.http, self.url, self.token = http, url, token

    async def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        async with self.http.request(method, self.url + path, headers=self.token,
                                     **kwargs) as response:
            body = await response.text()
            assert response.status == expect, f"{method} {path}: {response.status} {body}"
            return json.loads(body) if body else {}

    async def upload(self, code: str, seed: int) -> int:
        form = aiohttp.FormData()
        form.add_field("code", code)
        form.add_field("file", make_photo(seed), filename=f"{code}.jpg",
                       content_type="image/jpeg")
        report = await self.call("POST", "/api/v1/images", 201, data=form)
        [item] = report["items"]
        assert item["outcome"] == "accepted", item
        return item["image_id"]

    async def replace(self, image_id: int, seed: int) -> dict:
        form = aiohttp.FormData()
        form.add_field("file", make_photo(seed), filename="new.jpg", content_type="image/jpeg")
        return await self.call("PUT", f"/api/v1/images/{image_id}/file", data=form)

    async def approve(self, image_id: int) -> dict:
        return await self.call("POST", f"/api/v1/images/{image_id}/approve", json={})

    async def img(self, path: str) -> tuple[int, str | None, bytes]:
        async with self.http.get(self.url + path) as response:
            return response.status, response.headers.get("ETag"), await response.read()


@contextlib.asynccontextmanager
async def clients(pair: Pair):
    async with aiohttp.ClientSession() as http:
        yield Client(http, pair.a.url, pair.token), Client(http, pair.b.url, pair.token)


async def _seen_within(
    b: Client, path: str, check: Callable[[int, str | None], bool], since: float
) -> float:
    """Poll ``path`` on B until ``check(status, etag)``; the seconds since ``since`` (the end of
    the change on A). Fails after GIVE_UP seconds; the caller asserts the delay."""
    while True:
        status, etag, _ = await b.img(path)
        if check(status, etag):
            return time.monotonic() - since
        assert time.monotonic() - since < GIVE_UP, f"B still answers {status} {etag} for {path}"
        await asyncio.sleep(0.005)


async def _warm(b: Client, path: str, status: int, etag: str | None = None) -> None:
    """Ask B twice: its resolution cache, replay memo and variant LRU now hold the answer."""
    for _ in range(2):
        got_status, got_etag, _ = await b.img(path)
        assert got_status == status, (path, got_status)
        if etag is not None:
            assert got_etag == etag


async def _change_then_seen(
    change: Callable[[], Awaitable[object]], b: Client, path: str,
    check: Callable[[int, str | None], bool],
) -> float:
    await change()
    return await _seen_within(b, path, check, time.monotonic())


def _id_version(etag: str | None) -> tuple[int, int]:
    image_id, version = etag.strip('"').split(":")[:2]
    return int(image_id), int(version)


# --- the tests --------------------------------------------------------------------------------

async def test_both_start_at_once_and_the_migrations_run_once(pair):
    migrations = db.load_migrations()
    conn = await asyncpg.connect(pair.database_url)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in migrations]
    # Each migration was applied by exactly one of the two; the other found nothing to do.
    applied = [line["version"] for instance in (pair.a, pair.b)
               for line in instance.events("migrated")]
    assert sorted(applied) == [m.version for m in migrations], applied
    for instance in (pair.a, pair.b):
        [serving] = instance.events("serving")
        assert serving["url"] == instance.url


async def test_a_token_from_one_instance_is_honoured_by_the_other(pair):
    async with clients(pair) as (_, b):
        me = await b.call("GET", "/api/v1/auth/me")
    assert me["email"] == ADMIN["email"]


async def test_approve_replace_reject_and_delete_on_a_show_on_b_within_a_second(pair):
    code, path = "INST-1", "/img/INST-1?w=120&fmt=webp"
    async with clients(pair) as (a, b):
        image_id = await a.upload(code, seed=101)
        await _warm(b, path, 404)  # pending: B caches "nothing here"
        delays = {}

        delays["approve"] = await _change_then_seen(
            lambda: a.approve(image_id), b, path, lambda s, _: s == 200)
        _, first_etag, _ = await b.img(path)
        assert _id_version(first_etag)[0] == image_id
        await _warm(b, path, 200, first_etag)

        # A new file: back to pending, out of /img at once; approved, /img serves the new one.
        record = await a.replace(image_id, seed=102)
        since = time.monotonic()
        delays["replace"] = await _seen_within(b, path, lambda s, _: s == 404, since)
        delays["approve new file"] = await _change_then_seen(
            lambda: a.approve(image_id), b, path, lambda s, _: s == 200)
        _, second_etag, _ = await b.img(path)
        assert _id_version(second_etag) == (image_id, record["version"])
        assert _id_version(second_etag)[1] > _id_version(first_etag)[1]
        await _warm(b, path, 200, second_etag)
        # The URL with the new v is the new picture for good (immutable), on B too.
        status, etag, _ = await b.img(f"{path}&v={record['version']}")
        assert (status, etag) == (200, second_etag)

        # Replaced again, then rejected: B never serves it again.
        await a.replace(image_id, seed=103)
        since = time.monotonic()
        delays["replace again"] = await _seen_within(b, path, lambda s, _: s == 404, since)
        await a.call("POST", f"/api/v1/images/{image_id}/reject", json={"reason": "blurry"})
        await _warm(b, path, 404)

        # Another photo of the code, approved, then deleted on A.
        other = await a.upload(code, seed=104)
        delays["approve other"] = await _change_then_seen(
            lambda: a.approve(other), b, path, lambda s, e: s == 200)
        await _warm(b, path, 200)
        delays["delete"] = await _change_then_seen(
            lambda: a.call("DELETE", f"/api/v1/images/{other}", 204), b, path,
            lambda s, _: s == 404)
    print("seconds until B saw the change:", {k: round(v, 4) for k, v in delays.items()})
    slow = {step: round(delay, 3) for step, delay in delays.items() if delay >= WITHIN}
    assert not slow, f"B saw these changes later than {WITHIN} s: {slow} (all: {delays})"


async def test_a_reorder_on_a_changes_what_b_serves_first_within_a_second(pair):
    async with clients(pair) as (a, b):
        first = await a.upload("INST-2", seed=201)
        second = await a.upload("INST-2", seed=202)
        for image_id in (first, second):
            await a.approve(image_id)
        for path, expected in (("/img/INST-2", first), ("/img/INST-2/1", first),
                               ("/img/INST-2/2", second)):
            status, etag, _ = await b.img(path)
            assert status == 200 and _id_version(etag)[0] == expected, (path, etag)
            await _warm(b, path, 200, etag)
        delay = await _change_then_seen(
            lambda: a.call("PATCH", f"/api/v1/images/{second}", json={"position": 1}),
            b, "/img/INST-2", lambda s, e: s == 200 and _id_version(e)[0] == second)
        status, etag, _ = await b.img("/img/INST-2/2")
        assert status == 200 and _id_version(etag)[0] == first
        status, etag, _ = await b.img("/img/INST-2/1")
        assert status == 200 and _id_version(etag)[0] == second
    print(f"seconds until B saw the reorder: {delay:.4f}")
    assert delay < WITHIN, f"B served the old first photo for {delay:.3f} s"


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        sample, value = line.rsplit(" ", 1)
        metric, _, rest = sample.partition("{")
        if metric != name:
            continue
        got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p))
        if all(part in got.split(",") for part in wanted.split(",") if part):
            total += float(value)
    return total


async def test_a_variant_rendered_on_a_is_served_by_b_from_redis(pair):
    path = "/img/INST-3?w=137&fmt=webp&q=71"  # a size nothing renders on its own
    async with clients(pair) as (a, b):
        image_id = await a.upload("INST-3", seed=301)
        await a.approve(image_id)
        metrics_a = await (await a.http.get(a.url + "/metrics")).text()
        status, etag, body = await a.img(path)
        assert status == 200
        after_a = await (await a.http.get(a.url + "/metrics")).text()
        served, renders = "ecogram_img_served_total", "ecogram_img_renders_total"
        # A rendered it (A's renders counter also moves with the approval's eager presets).
        assert _metric(after_a, served, tier="render") == _metric(
            metrics_a, served, tier="render") + 1
        # A writes it to Redis in the background: wait for the key.
        key = f"{pair.prefix}:img:{etag.strip(chr(34))}"
        raw = redis_sync.Redis.from_url(REDIS_URL)
        try:
            deadline = time.monotonic() + 5
            while not raw.exists(key):
                assert time.monotonic() < deadline, f"{key} never reached Redis"
                await asyncio.sleep(0.02)
        finally:
            raw.close()
        before_b = await (await b.http.get(b.url + "/metrics")).text()
        status_b, etag_b, body_b = await b.img(path)
        after_b = await (await b.http.get(b.url + "/metrics")).text()
    assert (status_b, etag_b, body_b) == (status, etag, body)
    assert _metric(after_b, served, tier="redis") == _metric(before_b, served, tier="redis") + 1
    assert _metric(after_b, served, tier="render") == _metric(before_b, served, tier="render")
    assert _metric(after_b, renders) == _metric(before_b, renders)


async def test_failed_sign_ins_on_a_count_on_b(pair):
    email = "mallory@example.com"
    async with aiohttp.ClientSession() as http:
        async with http.post(pair.b.url + "/api/v1/auth/register", json={
                "email": email, "name": "Mallory", "password": PASSWORD}) as response:
            assert response.status == 201, await response.text()
        wrong = {"email": email, "password": "not the password at all"}
        for _ in range(MAX_FAILURES):
            async with http.post(pair.a.url + "/api/v1/auth/login", json=wrong) as response:
                assert response.status == 401, await response.text()
        # B refuses at once, even the right password: the failures were counted on A.
        right = {"email": email, "password": PASSWORD}
        async with http.post(pair.b.url + "/api/v1/auth/login", json=right) as response:
            assert response.status == 429, await response.text()
            assert int(response.headers["Retry-After"]) > 0
    # Counted in Redis (the shared store), not in the PostgreSQL fallback.
    raw = redis_sync.Redis.from_url(REDIS_URL)
    try:
        assert list(raw.scan_iter(f"{pair.prefix}:login:email:*"))
    finally:
        raw.close()
    conn = await asyncpg.connect(pair.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM login_failures") == 0
    finally:
        await conn.close()


async def _listener_pids(pair: Pair, instance: Instance) -> list[int]:
    """The PostgreSQL backends of ``instance``'s LISTEN connection: its sockets to PostgreSQL
    whose last statement was the LISTEN or the listener's health query."""
    ports = set()
    for proc in [psutil.Process(instance.proc.pid),
                 *psutil.Process(instance.proc.pid).children(recursive=True)]:
        for sock in proc.net_connections(kind="inet"):
            if sock.raddr and sock.status == psutil.CONN_ESTABLISHED:
                ports.add(sock.laddr.port)
    conn = await asyncpg.connect(pair.database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
            "AND (query LIKE 'LISTEN %' OR query = 'SELECT 1')")
    finally:
        await conn.close()
    return [r["pid"] for r in rows if r["client_port"] in ports]


async def _terminate(pair: Pair, pids: list[int]) -> None:
    conn = await asyncpg.connect(pair.database_url)
    try:
        for pid in pids:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def _logged(instance: Instance, event: str, count: int, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    while len(instance.events(event)) < count:
        assert time.monotonic() < deadline, f"{instance.name} never logged {event} x{count}"
        await asyncio.sleep(0.02)


async def test_b_stays_exact_while_its_listen_connection_is_cut_and_remade(pair):
    path = "/img/INST-4?w=120&fmt=webp"
    async with clients(pair) as (a, b):
        image_id = await a.upload("INST-4", seed=401)
        await _warm(b, path, 404)
        connected = len(pair.b.events("image_listener_connected"))
        lost = len(pair.b.events("image_listener_lost"))
        pids = await _listener_pids(pair, pair.b)
        assert len(pids) == 1, pids
        await _terminate(pair, pids)
        await _logged(pair.b, "image_listener_lost", lost + 1)
        # No LISTEN connection: B trusts no cached resolution, so it is exact meanwhile.
        without = await _change_then_seen(
            lambda: a.approve(image_id), b, path, lambda s, _: s == 200)
        await _logged(pair.b, "image_listener_connected", connected + 1)
        await _warm(b, path, 200)
        # Listening again: its cache is trusted, and changes reach it by NOTIFY as before.
        again = await _change_then_seen(
            lambda: a.call("DELETE", f"/api/v1/images/{image_id}", 204), b, path,
            lambda s, _: s == 404)
    print(f"seconds until B saw it: without LISTEN {without:.4f}, listening again {again:.4f}")
    assert without < WITHIN and again < WITHIN, (without, again)
