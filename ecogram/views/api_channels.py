"""``/api/v1/channels``: the sales channel profiles, and each product's readiness for one.

Thin handlers: parse the request, call ``ecogram.catalog.channels``, answer JSON. Finding
sentences are in the request's language (``ecogram.i18n.choose_language``: the language cookie,
else ``Accept-Language``, else English).
"""

from __future__ import annotations

from aiohttp import web

from ecogram import i18n, keys
from ecogram.catalog import channels
from ecogram.errors import invalid
from ecogram.views.api_images import codes_param, int_param, text_param


def _ready_param(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise invalid("ready must be true or false.", fields={"ready": "true or false"})
    return value == "true"


async def list_channels(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    return web.json_response({"items": [
        channels.profile_record(profile, settings.channels)
        for profile in settings.channel_profiles.values()
    ]})


async def get_channel(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    profile = channels.find_profile(settings.channel_profiles, request.match_info["id"])
    return web.json_response(channels.profile_record(profile, settings.channels))


async def readiness(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    profile = channels.find_profile(settings.channel_profiles, request.match_info["id"])
    q = request.query
    query = channels.ReadinessQuery(
        codes=codes_param(q),
        status=text_param(q, "status") or "approved",
        ready=_ready_param(text_param(q, "ready")),
        page=int_param(q, "page", 1),
        per_page=int_param(q, "per_page", 50),
    )
    lang = i18n.choose_language(request)
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channels.readiness(conn, profile, query, lang)
    return web.json_response(body, headers={"Content-Language": lang.replace("_", "-")})
