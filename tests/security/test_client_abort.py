"""A client that goes away mid-upload is a client abort (499), not our 500 (issue 11).

A real socket sends the headers and half of a multipart upload, then closes; the server must
log one ``client_abort`` line (INFO, no traceback) and count the request as 499.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from aiohttp import web

from ecogram import keys
from ecogram.app import create_app
from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD, assert_error

BOUNDARY = "ecogram-abort-boundary"


def _events(caplog, event: str) -> list[tuple[logging.LogRecord, dict]]:
    found = []
    for record in caplog.records:
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == event:
            found.append((record, line))
    return found


def _upload(token: str, host: str, photo: bytes) -> tuple[bytes, bytes]:
    """(everything up to the file's bytes, the closing boundary) of a multipart upload."""
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nABORT-1\r\n"
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.jpg\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    request = (
        f"POST /api/v1/images HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + len(photo) + len(tail)}\r\n\r\n"
    ).encode()
    return request + head, tail


@pytest.fixture
async def serve():
    """``await serve(app, handler_cancellation)`` → (host, port) of a real server on a port,
    run the way ``ecogram serve`` runs it (aiohttp's web.run_app cancels no handler when the
    client leaves; aiohttp's own test server does)."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application, handler_cancellation: bool) -> tuple[str, int]:
        runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner.addresses[0][:2]

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("cancelled", [False, True], ids=["run_app", "handler_cancellation"])
@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_gone_mid_upload_is_a_client_abort(settings, serve, caplog, how,
                                                          cancelled):
    caplog.set_level(logging.INFO)
    app = create_app(settings)
    host, port = await serve(app, cancelled)
    base = f"http://{host}:{port}"
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{base}/api/v1/auth/register", json={
            "email": "admin@example.com", "name": "Ada Admin", "password": PASSWORD})
        assert response.status == 201  # the first user: admin, who may import
        response = await session.post(f"{base}/api/v1/auth/login", json={
            "email": "admin@example.com", "password": PASSWORD})
        token = (await response.json())["access_token"]
    photo = make_photo(7, 1200, 1200)
    start, _ = _upload(token, f"{host}:{port}", photo)

    _, writer = await asyncio.open_connection(host, port)
    writer.write(start + photo[: len(photo) // 2])
    await writer.drain()
    await asyncio.sleep(0.3)  # the handler is reading the file part by now
    if how == "reset":
        writer.transport.abort()  # RST rather than FIN
    else:
        writer.close()
    for _ in range(100):
        if [line for _, line in _events(caplog, "request") if line["path"] == "/api/v1/images"]:
            break
        await asyncio.sleep(0.05)

    [request] = [line for _, line in _events(caplog, "request")
                 if line["path"] == "/api/v1/images"]
    assert request["status"] == 499
    [(record, abort)] = _events(caplog, "client_abort")
    assert record.levelno == logging.INFO
    assert set(abort) == {"event", "request_id", "method", "path", "error"}
    assert abort["request_id"] == request["request_id"] and abort["path"] == "/api/v1/images"
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert app[keys.metrics].sample(
        "ecogram_http_requests_total", route="images_import", method="POST", status="499") == 1

    # Nothing was imported, and the service goes on.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        response = await session.get(f"{base}/api/v1/images")
        assert response.status == 200
        assert (await response.json())["total"] == 0


async def test_a_body_that_does_not_decode_is_the_clients_400(client, caplog):
    # The client is still there, but what it sent cannot be read (here: "gzip" that is not).
    caplog.set_level(logging.INFO)
    response = await client.post(
        "/api/v1/auth/login", data=b"this is not gzip at all" * 10,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert_error(await response.json(), "bad_request")
    # (aiohttp itself still logs the body's error when it drains what is left of it after the
    # answer; ecogram logs no error of its own.)
    assert not [r for r in caplog.records if r.name.startswith("ecogram")
                and (r.exc_info or r.levelno >= logging.ERROR)]
    assert not _events(caplog, "client_abort")
