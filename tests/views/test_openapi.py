"""The OpenAPI document: complete, valid, and true to what a live server answers."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from openapi_spec_validator import validate

from ecogram.app import create_app
from ecogram.routes import ROUTES

OPENAPI_PATH = "/api/openapi.json"


def _openapi_path(path: str) -> str:
    import re

    return re.sub(r"\{(\w+):[^/]*\}", r"{\1}", path)


async def test_document_is_valid_and_lists_every_api_route(client):
    response = await client.get(OPENAPI_PATH)  # public: no token
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    api_routes = [r for r in ROUTES if r.path.startswith("/api")]
    assert len(api_routes) > 10
    for route in api_routes:
        path = _openapi_path(route.path)
        assert path in document["paths"], path
        operation = document["paths"][path][route.method.lower()]
        assert operation["operationId"] == route.name
        assert operation["x-access"] == route.access
        assert "default" in operation["responses"]
        # Public routes need no token; the others declare the bearer scheme (document-wide).
        assert (operation.get("security") == []) == (route.access == "public")


async def test_an_undescribed_route_still_appears():
    from ecogram import openapi
    from ecogram.routes import Route

    async def handler(request):  # pragma: no cover - never called
        return web.Response()

    route = Route("GET", r"/api/v1/things/{id:\d+}", handler, "things_get_undescribed",
                  "viewer")
    document = openapi.build([route])
    operation = document["paths"]["/api/v1/things/{id}"]["get"]
    assert operation["parameters"][0]["schema"] == {"type": "integer", "minimum": 1}
    assert "200" in operation["responses"]
    validate(document)


class LiveServer:
    """The app on a real port, in its own thread and event loop (schemathesis is blocking)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(create_app(self.settings))
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(30)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# Operations that would make the fuzzing session useless if it hit them: logging the fuzzer's
# own admin out, or changing its password/role. They are covered by their own suites.
SKIPPED = {"auth_logout", "auth_password", "users_update"}


def test_schemathesis_finds_no_server_error_and_no_schema_break(settings):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from tests.catalog.photos import make_photo

    with LiveServer(settings.replace(min_side=100)) as base:
        http = requests.Session()
        creds = {"email": "fuzz@example.com", "name": "Fuzz Admin",
                 "password": "correct horse battery staple"}
        assert http.post(f"{base}/api/v1/auth/register", json=creds).status_code == 201
        token = http.post(f"{base}/api/v1/auth/login", json=creds).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        # Something to find: two photos, one approved, so ids 1 and 2 exist.
        response = http.post(f"{base}/api/v1/images", headers=headers,
                             files=[("file", ("a.jpg", make_photo(1))),
                                    ("file", ("b.jpg", make_photo(2)))],
                             data={"code": "FUZZ-1"})
        assert response.status_code == 201, response.text
        http.post(f"{base}/api/v1/images/1/approve", headers=headers)

        document = http.get(f"{base}{OPENAPI_PATH}").json()
        schema = schemathesis.openapi.from_dict(document)
        checks = [not_a_server_error, response_schema_conformance, content_type_conformance,
                  status_code_conformance]
        failures: list[str] = []
        tested = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.definition.raw.get("operationId") in SKIPPED:
                continue
            tested += 1

            @given(case=operation.as_strategy())
            @hsettings(max_examples=6, deadline=None, database=None,
                       phases=[Phase.explicit, Phase.generate],
                       suppress_health_check=list(HealthCheck))
            def check(case):
                response = case.call(base_url=base, headers=headers, timeout=20)
                case.validate_response(response, checks=checks)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # collect all, then report
                failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:1500])
        # The admin token still works: the fuzzing did not lock itself out half-way.
        assert http.get(f"{base}/api/v1/auth/me", headers=headers).status_code == 200
    assert tested >= 15
    assert not failures, "\n\n".join(failures)
