"""``/api/v1/channels``: the sales channel profiles, and each product's readiness for one.

Thin handlers: parse the request, call ``ecogram.catalog.channels``, answer JSON. Finding
sentences are in the request's language (``ecogram.i18n.choose_language``: the language cookie,
else ``Accept-Language``, else English).
"""

from __future__ import annotations

from aiohttp import web

from ecogram import i18n, keys, models
from ecogram.catalog import channels
from ecogram.contract import operation


@operation("The sales channel profiles", responses={200: models.ChannelList})
async def list_channels(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    return web.json_response({"items": [
        channels.profile_record(profile, settings.channels)
        for profile in settings.channel_profiles.values()
    ]})


@operation("One sales channel profile", responses={200: models.Channel})
async def get_channel(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    profile = channels.find_profile(settings.channel_profiles, request.match_info["id"])
    return web.json_response(channels.profile_record(profile, settings.channels))


@operation("Each product's readiness for a sales channel",
           description="Per product: ready when every finding of it and of its counted photos "
           "is fixable by the channel rendition. Finding messages follow Accept-Language (en, "
           "pt-BR).", query=models.ReadinessQuery, responses={200: models.Readiness})
async def readiness(request: web.Request, query: models.ReadinessQuery) -> web.Response:
    settings = request.app[keys.settings]
    profile = channels.find_profile(settings.channel_profiles, request.match_info["id"])
    asked = channels.ReadinessQuery(codes=tuple(query.code) or None, status=query.status,
                                    ready=query.ready, page=query.page,
                                    per_page=query.per_page)
    lang = i18n.choose_language(request)
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channels.readiness(conn, profile, asked, lang)
    return web.json_response(body, headers={"Content-Language": lang.replace("_", "-")})
