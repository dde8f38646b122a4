"""``/api/v1/users``: the admins' list of accounts and role / disabled changes."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import accounts
from ecogram.contract import operation
from ecogram.errors import not_found
from ecogram.views.api_auth import client_address


@operation("List users", responses={200: models.UserList})
async def list_users(request: web.Request) -> web.Response:
    users = await accounts.list_users(request.app[keys.db_pool])
    return web.json_response({"items": users, "total": len(users)})


@operation("Change a user's role or disabled flag", body=models.UserChange,
           responses={200: models.User}, errors=(409,))
async def update_user(request: web.Request, body: models.UserChange) -> web.Response:
    raw_id = request.match_info["id"]
    # The route pattern admits digits only; bound the size so int() and bigint agree.
    if len(raw_id) > 18:
        raise not_found("There is no such user.")
    changes = {name: value for name, value in msgspec.structs.asdict(body).items()
               if value is not msgspec.UNSET}
    user = await accounts.update_user(
        request.app[keys.db_pool], request[keys.user], int(raw_id), changes,
        client=client_address(request),
    )
    return web.json_response(user)
