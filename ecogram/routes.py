"""The one route table. Each route names who may call it, next to the route itself.

A route's ``access`` is ``public`` or the weakest role allowed (see ``ecogram.auth.roles``);
the guard middleware enforces it, and a test walks this table for every role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ecogram import keys
from ecogram.auth.roles import PUBLIC, ROLES
from ecogram.views import health

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    access: str

    def __post_init__(self) -> None:
        if self.access not in (PUBLIC, *ROLES):
            raise ValueError(f"route {self.name}: unknown access {self.access!r}")


ROUTES: list[Route] = [
    # Operations
    Route("GET", "/healthz", health.healthz, "healthz", PUBLIC),
    Route("GET", "/readyz", health.readyz, "readyz", PUBLIC),
    Route("GET", "/metrics", health.metrics, "metrics", PUBLIC),
]


def setup_routes(app: web.Application) -> None:
    table: dict[web.AbstractRoute, Route] = {}
    for route in ROUTES:
        if route.method == "GET":
            added = app.router.add_get(route.path, route.handler, name=route.name)
        else:
            added = app.router.add_route(route.method, route.path, route.handler, name=route.name)
        # add_get also adds a HEAD route to the same resource: it shares the declaration.
        for sibling in added.resource or ():
            if sibling.handler is route.handler:
                table[sibling] = route
    app[keys.route_table] = table


def route_for(request: web.Request) -> Route | None:
    """The declared route that matched this request, if any."""
    return request.app[keys.route_table].get(request.match_info.route)
