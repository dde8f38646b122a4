"""The OpenAPI document: complete, valid, and true to what a live server answers."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from ecogram.app import create_app
from ecogram.routes import ROUTES
from ecogram.server import make_runner

OPENAPI_PATH = "/api/openapi.json"


def _openapi_path(path: str) -> str:
    from ecogram.openapi import _path

    return _path(path)[0]


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
        # Every status it can answer is listed; failures in the one error shape.
        assert any(code.startswith("2") for code in operation["responses"]), route.name
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (route.name, code)
        assert "503" in operation["responses"]
        if route.access != "public":
            assert {"401", "403"} <= set(operation["responses"]), route.name
        # Public routes need no token; the others declare the bearer scheme (document-wide).
        assert (operation.get("security") == []) == (route.access == "public")


async def test_a_route_without_a_declared_operation_is_refused():
    """The document is written from declarations only: a machine route without one is a
    mistake the document cannot paper over."""
    from ecogram import openapi
    from ecogram.routes import Route

    async def handler(request):  # pragma: no cover - never called
        return web.Response()

    route = Route("GET", r"/api/v1/things/{id:\d+}", handler, "things_get_undeclared", "viewer")
    with pytest.raises(LookupError, match="things_get_undeclared"):
        openapi.build([route])


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
        # The production stack: the server of ``ecogram serve`` (head deadline, JSON refusals).
        self.runner = make_runner(create_app(self.settings), self.settings)
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
