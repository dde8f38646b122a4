"""``/api/v1/auth``: register, login, logout, me and password changes (JSON in, JSON out)."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, models
from ecogram.auth.identity import forwarded_client
from ecogram.catalog import accounts
from ecogram.contract import NO_CONTENT, operation


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or behind trusted proxies the one they forwarded."""
    trusted = request.app[keys.settings].trusted_proxies
    if not trusted:
        return request.remote or "unknown"
    return forwarded_client(request.remote, request.headers.getall("X-Forwarded-For", ()),
                            trusted)


def _token_response(issued) -> web.Response:
    return web.json_response(
        {"access_token": issued.token, "token_type": "bearer", "expires_in": issued.expires_in},
        headers={"Cache-Control": "no-store"},
    )


@operation("Register (the first user becomes admin)", body=models.Registration,
           responses={201: models.User}, errors=(403, 409, 429))
async def register(request: web.Request, body: models.Registration) -> web.Response:
    user = await accounts.register(
        request.app[keys.db_pool], request.app[keys.settings],
        email=body.email, name=body.name, password=body.password,
        client=client_address(request),
    )
    return web.json_response(user, status=201, headers={"Cache-Control": "no-store"})


@operation("Log in", body=models.Login, responses={200: models.Token}, errors=(401, 429))
async def login(request: web.Request, body: models.Login) -> web.Response:
    issued, _identity = await accounts.login(
        request.app[keys.db_pool], request.app[keys.settings], request.app[keys.login_throttle],
        email=body.email, password=body.password, client=client_address(request),
    )
    return _token_response(issued)


@operation("The signed-in user", responses={200: models.User})
async def me(request: web.Request) -> web.Response:
    user = await accounts.get_user(request.app[keys.db_pool], request[keys.user].id)
    return web.json_response(user, headers={"Cache-Control": "no-store"})


@operation("Revoke this token", responses={204: NO_CONTENT})
async def logout(request: web.Request) -> web.Response:
    await accounts.logout(
        request.app[keys.db_pool], request[keys.user], request[keys.credentials],
        client=client_address(request),
    )
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


@operation("Change one's password (every other token is revoked)", body=models.PasswordChange,
           responses={200: models.Token}, errors=(429,))
async def change_password(request: web.Request, body: models.PasswordChange) -> web.Response:
    issued = await accounts.change_password(
        request.app[keys.db_pool], request.app[keys.settings], request.app[keys.login_throttle],
        request[keys.user], current_password=body.current_password,
        new_password=body.new_password, client=client_address(request),
    )
    return _token_response(issued)
