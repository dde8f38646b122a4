"""Typed keys for what lives on the application (aiohttp ``web.AppKey``) and on a request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from ecogram.auth.identity import Credentials, Identity
from ecogram.metrics import Metrics
from ecogram.settings import Settings

if TYPE_CHECKING:  # a type only: keys must not import the use cases above it
    from ecogram.catalog.analytics import Flusher
    from ecogram.catalog.channels import GeometryRecorder
    from ecogram.catalog.delivery import Delivery
    from ecogram.redis_client import SharedRedis

settings = web.AppKey("settings", Settings)
db_pool = web.AppKey("db_pool", asyncpg.Pool)
metrics = web.AppKey("metrics", Metrics)
# The bounded thread pool that runs libvips work (import checks and renders), off the loop.
vips_executor = web.AppKey("vips_executor", ThreadPoolExecutor)
# The declared route for each aiohttp route object, so middlewares can read its access rule.
route_table = web.AppKey("route_table", dict)
# The app's one Redis client, prefix and deadline; only set when REDIS_URL is (redis_client).
redis: web.AppKey[SharedRedis] = web.AppKey("redis")
# Where failed logins are counted: PostgreSQL, or Redis when REDIS_URL is set (auth.throttle).
login_throttle = web.AppKey("login_throttle", object)
# Public delivery (/img): its caches, LISTEN connection and render queue (catalog.delivery).
delivery: web.AppKey[Delivery] = web.AppKey("delivery")
# Measures approved and changed photos for channel readiness, in the background (catalog.channels).
geometry: web.AppKey[GeometryRecorder] = web.AppKey("geometry")
# Writes the delivery's counts to PostgreSQL; set only when counting (catalog.analytics).
analytics: web.AppKey[Flusher] = web.AppKey("analytics")

# None until the request needs one (ecogram.request_ids).
request_id: web.RequestKey[str | None] = web.RequestKey("request_id")
# The signed-in user; set by the auth guard on authenticated requests only.
user = web.RequestKey("user", Identity)
# The token behind request[user]: its jti (logout, CSRF) and how it came (bearer or cookie).
credentials = web.RequestKey("credentials", Credentials)
