"""Typed keys for what lives on the application (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from ecogram.auth.identity import Identity
from ecogram.settings import Settings

if TYPE_CHECKING:
    pass

settings = web.AppKey("settings", Settings)
db_pool = web.AppKey("db_pool", asyncpg.Pool)
metrics = web.AppKey("metrics", "Metrics")
# The declared route for each aiohttp route object, so middlewares can read its access rule.
route_table = web.AppKey("route_table", dict)


request_id = web.RequestKey("request_id", str)
# The signed-in user; set by the auth guard on authenticated requests only.
user = web.RequestKey("user", Identity)
