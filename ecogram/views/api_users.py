"""``/api/v1/users``: the admins' list of accounts and role / disabled changes."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import accounts
from ecogram.errors import not_found
from ecogram.inputs import read_json
from ecogram.views.api_auth import client_address


async def list_users(request: web.Request) -> web.Response:
    users = await accounts.list_users(request.app[keys.db_pool])
    return web.json_response({"items": users, "total": len(users)})


async def update_user(request: web.Request) -> web.Response:
    raw_id = request.match_info["id"]
    # The route pattern admits digits only; bound the size so int() and bigint agree.
    if len(raw_id) > 18:
        raise not_found("There is no such user.")
    body = await read_json(request)
    user = await accounts.update_user(
        request.app[keys.db_pool], request[keys.user], int(raw_id), body,
        client=client_address(request),
    )
    return web.json_response(user)
