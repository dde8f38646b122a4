"""Request bodies are bounded: page forms and JSON get a small limit (413 above it, measured on
a real server's memory for a 300 MB form), and a body that stops arriving is answered 408 and
its connection closed, whoever sends it and on every route that reads one."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest
import pyvips

from ecogram.app import create_app
from tests.auth.conftest import session_cookie
from tests.auth.test_pages import csrf_token, sign_in
from tests.conftest import PASSWORD, TEST_SECRET, assert_error
from tests.security.raw_http import read_answer
from tests.security.raw_http import request as raw_request

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


@pytest.fixture
async def quick_client(aiohttp_client, settings):
    """A client on an app whose bodies time out after half a second of silence."""
    return await aiohttp_client(create_app(settings.replace(body_timeout=0.5)))


async def _chunks(total: int, size: int = 256 * 1024):
    sent = 0
    block = b"a" * size
    while sent < total:
        yield block
        sent += size


# --- size limits -------------------------------------------------------------------------------

async def test_a_large_login_form_is_413_from_its_declared_length(client):
    body = b"email=a%40b.c&password=" + b"x" * (65 * 1024)
    response = await client.post("/login", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 413
    assert response.headers.get("Connection") == "close"


async def test_a_chunked_form_without_a_length_is_stopped_at_the_limit(client):
    response = await client.post("/login", data=_chunks(20 * MB), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 413


async def test_a_large_multipart_form_to_a_page_without_files_is_413(client):
    data = aiohttp.FormData()
    data.add_field("email", "a@b.c")
    data.add_field("file", b"x" * (200 * 1024), filename="big.bin")
    response = await client.post("/login", data=data)
    assert response.status == 413


async def test_large_json_bodies_are_413_on_every_json_route(client, login_as):
    admin = await login_as("admin")
    big = {"email": "a@b.c", "password": "x" * (70 * 1024)}
    for method, path in (("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/register"),
                         ("PATCH", "/api/v1/users/1"), ("POST", "/api/v1/reviews"),
                         ("PATCH", "/api/v1/images/1"), ("POST", "/api/v1/images/1/approve")):
        response = await client.request(method, path, json=big, headers=admin)
        assert response.status == 413, path
        assert_error(await response.json(), "too_large")
    response = await client.post("/api/v1/auth/login", data=_chunks(10 * MB),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413


async def test_a_json_body_that_arrives_in_pieces_is_read_whole(client, login_as):
    await login_as("admin")
    payload = ('{"email": "admin@example.com", "password": "' + PASSWORD + '"}').encode()

    async def slowly():
        for i in range(0, len(payload), 7):
            yield payload[i:i + 7]
            await asyncio.sleep(0.01)

    response = await client.post("/api/v1/auth/login", data=slowly(),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 200, await response.text()


def _noisy_photo() -> bytes:
    """A photo far larger than the form limit (noise does not compress)."""
    noise = pyvips.Image.gaussnoise(800, 800, mean=128, sigma=60).cast("uchar")
    return noise.bandjoin([noise, noise]).jpegsave_buffer(Q=95)


async def test_the_page_upload_form_still_takes_a_large_photo(client, login_as, make_image):
    record = await make_image("SKU-1")
    _, session = await sign_in(client)
    # Read by the guard (a cookie session: the CSRF field) or by the handler (a token).
    for headers in (session_cookie(session), await login_as("importer")):
        photo = _noisy_photo()  # new noise each time: never a duplicate
        assert len(photo) > 4 * 64 * 1024
        data = aiohttp.FormData()
        data.add_field("csrf_token", csrf_token(session))
        data.add_field("file", photo, filename="new.jpg", content_type="image/jpeg")
        response = await client.post(f"/admin/images/{record['id']}/replace", data=data,
                                     headers=headers, allow_redirects=False)
        assert response.status == 303, await response.text()
    # The same form to a page that takes no file stops at the form limit.
    data = aiohttp.FormData()
    data.add_field("csrf_token", csrf_token(session))
    data.add_field("file", _noisy_photo(), filename="new.jpg", content_type="image/jpeg")
    response = await client.post(f"/admin/images/{record['id']}/edit", data=data,
                                 headers=session_cookie(session), allow_redirects=False)
    assert response.status == 413


async def test_the_form_limit_is_a_setting(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings.replace(max_form_kb=1)))
    response = await client.post("/login", data={"email": "a@b.c", "password": "x" * 2000})
    assert response.status == 413


# --- bodies that stop arriving -----------------------------------------------------------------

async def _stalled(client, head: bytes, sent: bytes = b"abc",
                   length: int = 1_000_000) -> tuple[float, object, bool]:
    """Declare a body of ``length`` bytes, send a few, stall; (seconds to the answer, the
    answer, whether the server then closed the connection)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    started = time.monotonic()
    try:
        writer.write(head + b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n"
                     + sent)
        await writer.drain()
        answer = await read_answer(reader, within=10)
        elapsed = time.monotonic() - started
        async with asyncio.timeout(15):  # aiohttp drains for its lingering time, then closes
            closed = await reader.read() == b""
    finally:
        writer.close()
    return elapsed, answer, closed


async def test_a_stalled_form_is_408_and_its_connection_closed(quick_client):
    elapsed, answer, closed = await _stalled(
        quick_client, b"POST /login HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/x-www-form-urlencoded", b"email=a", length=1000)
    assert answer.status == 408
    assert elapsed < 5
    assert answer.headers.get("connection") == "close"
    assert closed


async def test_stalled_bodies_are_408_on_every_kind_of_route(quick_client):
    client = quick_client
    response = await client.post("/api/v1/auth/register", json={
        "email": "admin@example.com", "name": "Ada", "password": PASSWORD})
    assert response.status == 201
    response = await client.post("/api/v1/auth/login", json={
        "email": "admin@example.com", "password": PASSWORD})
    bearer = b"Authorization: Bearer " + (await response.json())["access_token"].encode()
    multipart = b"Content-Type: multipart/form-data; boundary=B"
    part = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nxx'
    small = 1000  # within the form and JSON limit; uploads declare a megabyte
    cases = (
        (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json",
         b'{"email"', small),
        (b"PATCH /api/v1/users/1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
         + bearer, b"{", small),
        (b"POST /register HTTP/1.1\r\nHost: t\r\nContent-Type: "
         b"application/x-www-form-urlencoded", b"email=", small),
        (b"POST /api/v1/images HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n" + bearer, part,
         1_000_000),
        (b"POST /api/v1/images HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n" + bearer,
         b"--B\r\nContent-Disposition: form", 1_000_000),
        (b"POST /api/v1/imports HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n" + bearer,
         part.replace(b"file", b"archive"), 1_000_000),
        (b"PUT /api/v1/images/1/file HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n" + bearer,
         part, 1_000_000),
        (b"POST /api/v1/channels/vtex/products HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n"
         + bearer, part, 1_000_000),
        (b"POST /admin/images/1/replace HTTP/1.1\r\nHost: t\r\n" + multipart + b"\r\n" + bearer,
         part, 1_000_000),
    )
    # All at once: each connection is closed only after aiohttp's lingering time.
    results = await asyncio.gather(*(_stalled(client, *case) for case in cases))
    for (head, _, _), (elapsed, answer, closed) in zip(cases, results, strict=True):
        assert answer.status == 408, (head, answer)
        assert elapsed < 5
        assert closed
        if head.startswith((b"POST /api", b"PATCH", b"PUT")):
            assert_error(answer.json(), "request_timeout")


# --- a real server's memory --------------------------------------------------------------------

def _wait_for_port(port: int, process: subprocess.Popen, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server stopped"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.2)
            continue
        return
    raise AssertionError("the server did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(clean_db, tmp_path):
    """``ecogram serve`` in its own process, so its memory is measured apart from the test's."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": clean_db, "ECOGRAM_SECRET_KEY": TEST_SECRET,
           "ECOGRAM_PORT": str(port), "ECOGRAM_DATA_DIR": str(tmp_path / "data"),
           "ECOGRAM_LOG_LEVEL": "warning", "ECOGRAM_BODY_TIMEOUT": "5",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "ecogram", "serve"], env=env, cwd=ROOT)
    try:
        _wait_for_port(port, process, 60)
        yield port, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _post_streamed_form(port: int, total: int, declare_length: bool) -> int:
    """POST /login with ``total`` bytes of form, generated as it is sent; the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = (b"Content-Length: " + str(total).encode() if declare_length
              else b"Transfer-Encoding: chunked")
    writer.write(b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: "
                 b"application/x-www-form-urlencoded\r\n" + length + b"\r\n\r\n"
                 + (b"email=" if declare_length else b"6\r\nemail=\r\n"))
    answer_task = asyncio.ensure_future(read_answer(reader, within=60))
    block = b"a" * MB
    try:
        for _ in range(total // MB):
            if answer_task.done():
                break
            writer.write(block if declare_length else b"100000\r\n" + block + b"\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed while we were still sending: what we want
    answer = await answer_task
    writer.close()
    return answer.status


@pytest.mark.timeout(180)
async def test_a_300_mb_form_is_413_and_the_server_does_not_grow(server):
    port, process = server
    # Warm up: the first requests load templates and open the pool.
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/login") as response:
                assert response.status == 200
    before = process.memory_info().rss
    peak = before

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    try:
        statuses = await asyncio.gather(
            _post_streamed_form(port, 300 * MB, declare_length=True),
            _post_streamed_form(port, 300 * MB, declare_length=False),
        )
    finally:
        watcher.cancel()
    assert statuses == [413, 413]
    growth = peak - before
    print(f"server RSS before {before / MB:.0f} MB, peak {peak / MB:.0f} MB")
    assert growth < 50 * MB, f"RSS grew by {growth / MB:.0f} MB"
    # And the server still answers.
    answer = await raw_request("127.0.0.1", port, b"GET /healthz HTTP/1.1\r\nHost: t")
    assert answer.status == 200
