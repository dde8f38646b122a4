"""A real `ecogram serve` in a subprocess: where it says to go, its workers, its request heads."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD, TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    stdout_line: str
    log: Path

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.log.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"text": line})
        return lines


def _read_line(proc: subprocess.Popen, deadline: float) -> str:
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data.decode()


def _get(url: str, timeout: float = 5) -> int:
    async def go() -> int:
        async with aiohttp.ClientSession() as session, session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            return response.status

    try:
        return asyncio.run(go())
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0


@pytest.fixture
def serve(clean_db, tmp_path) -> Iterator:
    started: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith("ECOGRAM_") and k != "REDIS_URL"}
        environ.update({
            "PYTHONPATH": str(ROOT), "DATABASE_URL": clean_db, "ECOGRAM_SECRET_KEY": TEST_SECRET,
            "ECOGRAM_DATA_DIR": str(tmp_path / "data"), "ECOGRAM_MIN_SIDE": "100", **env,
        })
        log = tmp_path / f"serve-{len(started)}.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ecogram", "serve", "--host", "127.0.0.1", "--port", "0",
                 *args], env=environ, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT)
        line = _read_line(proc, time.monotonic() + 60)
        match = re.search(r"http://[^\s;,()]+", line)
        served = Served(proc, match[0] if match else "", line, log)
        started.append(served)
        assert match, f"no URL in {line!r}: {log.read_text()}"
        deadline = time.monotonic() + 60
        while _get(served.url + "/healthz") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            for child in psutil.Process(served.proc.pid).children(recursive=True):
                child.kill()
            served.proc.kill()
        served.proc.wait(10)
        served.proc.stdout.close()


def test_serve_says_where_to_go_and_public_urls_follow_the_address_served(serve):
    served = serve()  # --port 0: the system chooses; ECOGRAM_PUBLIC_URL is unset
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", served.url)
    assert served.url in served.stdout_line and "8080" not in served.url
    [start] = [line for line in served.log_lines() if line.get("event") == "serving"]
    assert start["url"] == served.url == start["public_url"]

    async def upload() -> dict:
        async with aiohttp.ClientSession(served.url) as session:
            account = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
            async with session.post("/api/v1/auth/register", json=account) as response:
                assert (await response.json())["role"] == "admin"
            login = {"email": "ada@example.com", "password": PASSWORD}
            async with session.post("/api/v1/auth/login", json=login) as response:
                token = (await response.json())["access_token"]
            form = aiohttp.FormData()
            form.add_field("file", make_photo(1), filename="SKU-1.jpg", content_type="image/jpeg")
            async with session.post("/api/v1/images", data=form,
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status in (200, 201), await response.text()
                return await response.json()

    report = asyncio.run(upload())
    urls = json.dumps([item["record"]["urls"] for item in report["items"]])
    assert f'"{served.url}/img/SKU-1/1' in urls, urls
    assert "8080" not in urls
    # One worker runs in this very process: SIGTERM stops it cleanly.
    assert psutil.Process(served.proc.pid).children() == []
    os.kill(served.proc.pid, signal.SIGTERM)
    assert served.proc.wait(30) == 0
    assert all("text" not in line for line in served.log_lines()), served.log.read_text()


def _workers(pid: int) -> list[int]:
    return sorted(child.pid for child in psutil.Process(pid).children()
                  if child.status() != psutil.STATUS_ZOMBIE)


def test_a_dead_worker_is_replaced_and_sigterm_stops_everything(serve):
    served = serve("--workers", "2", ECOGRAM_HEADER_TIMEOUT="1")
    deadline = time.monotonic() + 30
    while len(_workers(served.proc.pid)) != 2:
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.2)
    before = _workers(served.proc.pid)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = _workers(served.proc.pid)
        if len(now) == 2 and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"workers {now}: {served.log.read_text()}"
        time.sleep(0.2)
    # The replacement and the survivor answer: several requests, several connections.
    assert [_get(served.url + "/healthz") for _ in range(6)] == [200] * 6
    # gunicorn's workers time request heads too.
    with _connect(served.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        data, waited = _wait_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ") and waited < 3, (data, waited)
    lines = served.log_lines()
    assert any("SIGKILL" in line.get("message", "") for line in lines)
    assert all("text" not in line for line in lines), "a line of the log is not JSON"

    os.kill(served.proc.pid, signal.SIGTERM)
    assert served.proc.wait(45) == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status()
                   != psutil.STATUS_ZOMBIE for pid in now)
    assert _get(served.url + "/healthz", timeout=2) == 0


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _wait_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start, data = time.monotonic(), b""
    while chunk := sock.recv(4096):
        data += chunk
    return data, time.monotonic() - start


def test_a_stalled_request_head_is_cut_off_within_the_header_timeout(serve):
    served = serve(ECOGRAM_HEADER_TIMEOUT="1")
    # Half a request head, then nothing: a 408 and the connection closed after ~1 s, not 75.
    with _connect(served.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n")
        data, waited = _wait_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    assert 0.8 <= waited < 3, waited
    # A client that drips a header line every 0.4 s is cut off all the same.
    with _connect(served.url) as sock:
        sock.settimeout(0.4)
        start, answer = time.monotonic(), None
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        for n in range(15):
            try:
                answer = sock.recv(4096)  # the 408, or b"" at the close
                break
            except TimeoutError:
                sock.sendall(f"X-Drip-{n}: 1\r\n".encode())
        waited = time.monotonic() - start
    assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
    assert waited < 3, waited
    # A connection that never says anything goes too.
    with _connect(served.url) as sock:
        data, waited = _wait_closed(sock)
    assert data == b"" and waited < 3


def test_keep_alive_is_not_cut_by_the_header_timeout(serve):
    served = serve(ECOGRAM_HEADER_TIMEOUT="1")
    request = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n"
    with _connect(served.url) as sock:
        # A head sent slowly but finished in time is answered.
        for piece in (request[:10], request[10:25], request[25:]):
            sock.sendall(piece)
            time.sleep(0.3)
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 "), first
        # Idle for three header timeouts between two requests: still open, still answered.
        time.sleep(3)
        sock.sendall(request)
        second = sock.recv(4096)
        assert second.startswith(b"HTTP/1.1 200 "), second
    lines = served.log_lines()
    assert not [line for line in lines if line.get("event") == "header_timeout"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_request_log_line_keeps_every_field_and_none_is_lost_at_stop(serve, workers):
    # The line is written by a queue's thread, off the request path: it still has every field,
    # and the lines queued when SIGTERM arrives are written before the process ends.
    served = serve("--workers", workers)
    answered = [_get(served.url + f"/healthz?n={n}") for n in range(40)]
    assert answered == [200] * 40
    os.kill(served.proc.pid, signal.SIGTERM)
    assert served.proc.wait(30) == 0
    lines = served.log_lines()
    assert all("text" not in line for line in lines), served.log.read_text()
    requests = [line for line in lines if line.get("event") == "request"]
    # 40 here, plus the fixture's wait for /healthz (at least one).
    assert len(requests) >= 41, served.log.read_text()
    for line in requests:
        assert set(line) == {"event", "request_id", "method", "path", "route", "status", "ms"}
        assert line["method"] == "GET" and line["path"] == "/healthz"
        assert line["route"] == "healthz" and line["status"] == 200
        assert isinstance(line["ms"], float) and line["request_id"]
