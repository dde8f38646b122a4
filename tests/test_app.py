import asyncio
import json
import logging
import urllib.parse

import pytest

from ecogram.app import create_app
from tests.conftest import assert_error


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_when_the_database_answers(client):
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["status"] == "ready"


class TcpProxy:
    """A real TCP hop between the app and PostgreSQL that a test can cut and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links.update({writer, up_writer})

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.server_fault
async def test_readyz_is_503_while_the_database_is_unreachable_then_recovers(
    aiohttp_client, settings
):
    parts = urllib.parse.urlsplit(settings.database_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    await proxy.start()
    proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}")
    app = create_app(settings.replace(database_url=urllib.parse.urlunsplit(proxied)))
    client = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200

    await proxy.cut()
    response = await client.get("/readyz")
    assert response.status == 503
    assert_error(await response.json(), "database_unreachable")
    assert (await client.get("/healthz")).status == 200  # the process itself is fine

    await proxy.start()  # same port: the database "comes back"
    for _ in range(20):
        if (await client.get("/readyz")).status == 200:
            break
        await asyncio.sleep(0.1)
    assert (await client.get("/readyz")).status == 200


async def test_unknown_api_path_is_a_json_404(client):
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert_error(await response.json(), "not_found")


async def test_unknown_page_is_an_html_404(client):
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    body = await response.text()
    assert "<html" in body and "404" in body
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.server_fault("500")
async def test_an_exception_in_a_handler_is_a_500_without_a_stack_trace(
    aiohttp_client, settings, no_server_errors
):
    async def boom(request):
        raise RuntimeError("secret internals: password=hunter2")

    app = create_app(settings)
    app.router.add_get("/api/v1/boom", boom)
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)

    response = await client.get("/api/v1/boom", headers={"X-Request-Id": "req-123"})
    assert response.status == 500
    body = await response.json()
    assert_error(body, "internal_error")
    assert body["error"]["details"]["request_id"] == "req-123"
    assert response.headers["X-Request-Id"] == "req-123"
    raw = json.dumps(body)
    assert "hunter2" not in raw and "Traceback" not in raw and "RuntimeError" not in raw

    page = await client.get("/boom")
    assert page.status == 500
    text = await page.text()
    assert "hunter2" not in text and "Traceback" not in text
    assert page.headers["X-Request-Id"] in text
    # The suite's watcher (tests/conftest.py) saw both: any unmarked test doing this fails.
    assert [line["status"] for line in no_server_errors.seen if "status" in line] == [500, 500]


async def test_each_request_logs_one_json_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="ecogram.http"):
        await client.get("/healthz")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecogram.http"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "healthz" and line["status"] == 200
    assert line["request_id"] and isinstance(line["ms"], float)


async def test_metrics_count_requests_by_route_and_status(client):
    await client.get("/healthz")
    await client.get("/api/v1/missing")
    text = await (await client.get("/metrics")).text()
    assert 'ecogram_http_requests_total{method="GET",route="healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "ecogram_http_request_duration_seconds_bucket" in text


async def test_method_not_allowed_is_json(client):
    response = await client.post("/healthz")
    assert response.status == 405
    assert_error(await response.json(), "method_not_allowed")


def test_app_refuses_a_short_secret_key(settings):
    import pytest

    from ecogram.settings import SettingsError

    with pytest.raises(SettingsError):
        create_app(settings.replace(secret_key="too-short"))


async def test_secret_key_is_generated_once_and_kept(settings, tmp_path):
    first = create_app(settings.replace(secret_key=None))
    second = create_app(settings.replace(secret_key=None))
    from ecogram import keys

    key = first[keys.settings].secret_key
    assert len(key) >= 32
    assert second[keys.settings].secret_key == key
    assert (settings.data_dir / "secret_key").stat().st_mode & 0o077 == 0




async def test_request_ids_are_unique_and_a_safe_incoming_one_is_kept(client, caplog):
    with caplog.at_level(logging.INFO, logger="ecogram.http"):  # requests are logged
        responses = [await client.get("/healthz") for _ in range(5)]
        ids = {response.headers["X-Request-Id"] for response in responses}
        assert len(ids) == 5
        logged = {json.loads(r.getMessage())["request_id"] for r in caplog.records
                  if r.name == "ecogram.http"}
        assert logged == ids  # each response names its log line
        forged = await client.get("/healthz", headers={"X-Request-Id": "<script>"})
        assert forged.headers["X-Request-Id"] not in ("<script>", "")
    kept = await client.get("/healthz", headers={"X-Request-Id": "edge-42"})
    assert kept.headers["X-Request-Id"] == "edge-42"
    assert forged.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_request_that_leaves_no_trace_spends_nothing_on_an_id(client):
    # Request logging off (the logger above INFO): answers have no log line to name. (A 500
    # is logged whatever the level, and always carries its id: see the test above.)
    logging.getLogger("ecogram.http").setLevel(logging.WARNING)
    try:
        response = await client.get("/healthz")
        assert response.status == 200 and "X-Request-Id" not in response.headers
        refused = await client.get("/api/v1/images/1")
        assert refused.status == 401 and "X-Request-Id" not in refused.headers
    finally:
        logging.getLogger("ecogram.http").setLevel(logging.NOTSET)
