"""Helpers for the account tests: users of each role, raw tokens, and the session cookie."""

from __future__ import annotations

import jwt
import pytest

from ecogram.auth.guard import SESSION_COOKIE
from tests.conftest import PASSWORD


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def claims_of(token: str) -> dict:
    """The payload, read without checking anything (to build forgeries from it)."""
    return jwt.decode(token, options={"verify_signature": False})


def session_cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


@pytest.fixture
def api(client):
    """Small JSON helpers over the test client."""

    class Api:
        async def register(self, email: str, name: str = "Some One", password: str = PASSWORD):
            return await client.post(
                "/api/v1/auth/register", json={"email": email, "name": name, "password": password}
            )

        async def login(self, email: str, password: str = PASSWORD, **kwargs):
            return await client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}, **kwargs
            )

        async def token(self, email: str, password: str = PASSWORD) -> str:
            response = await self.login(email, password)
            assert response.status == 200, await response.text()
            return (await response.json())["access_token"]

        async def me(self, token: str):
            return await client.get("/api/v1/auth/me", headers=bearer(token))

    return Api()
