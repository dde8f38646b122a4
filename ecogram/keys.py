"""Typed keys for what lives on the application (aiohttp ``web.AppKey``) and on a request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import asyncpg
from aiohttp import web

from ecogram.auth.identity import Identity
from ecogram.metrics import Metrics
from ecogram.settings import Settings

settings = web.AppKey("settings", Settings)
db_pool = web.AppKey("db_pool", asyncpg.Pool)
metrics = web.AppKey("metrics", Metrics)
# The bounded thread pool that runs libvips work (import checks and renders), off the loop.
vips_executor = web.AppKey("vips_executor", ThreadPoolExecutor)
# The declared route for each aiohttp route object, so middlewares can read its access rule.
route_table = web.AppKey("route_table", dict)

request_id = web.RequestKey("request_id", str)
# The signed-in user; set by the auth guard on authenticated requests only.
user = web.RequestKey("user", Identity)
