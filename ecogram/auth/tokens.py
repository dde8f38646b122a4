"""Access tokens: HS256 JWTs with every claim required and the algorithm pinned.

Claims: ``iss``, ``aud``, ``sub`` (user id), ``iat``, ``exp``, ``jti`` (for revocation) and
``ver`` (the user's token_version when issued; the guard compares it on every request, so a
password, role or disabled change ends every live token at once).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ISSUER = "ecogram"
AUDIENCE = "ecogram-api"
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "ver")
# Tolerated clock difference between the machines of one deployment, in seconds.
LEEWAY = 10
# Far above any token we issue; refuses megabyte headers before any parsing.
MAX_TOKEN_LENGTH = 4096


class TokenError(Exception):
    """The token is not one we issued, or no longer valid. Its text is for logs only."""


@dataclass(frozen=True)
class Claims:
    user_id: int
    version: int
    jti: str
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: Claims
    expires_in: int


def issue(secret_key: str, user_id: int, version: int, ttl: int) -> IssuedToken:
    now = int(time.time())
    claims = Claims(
        user_id=user_id,
        version=version,
        jti=secrets.token_urlsafe(16),
        issued_at=now,
        expires_at=now + ttl,
    )
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": claims.issued_at,
        "exp": claims.expires_at,
        "jti": claims.jti,
        "ver": version,
    }
    token = jwt.encode(payload, secret_key, algorithm=ALGORITHM)
    return IssuedToken(token=token, claims=claims, expires_in=ttl)


def decode(secret_key: str, token: str) -> Claims:
    """The claims of a token we signed and that is still in date; else ``TokenError``."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token missing or too long")
    # A JWT is ASCII; other bytes (a corrupted cookie, a mangled header) are simply not one.
    if not token.isascii():
        raise TokenError("token is not ASCII")
    try:
        payload = jwt.decode(
            token,
            secret_key,
            # Pinned: `none`, RS*/ES* (key confusion) and any other algorithm are refused.
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_signature": True,
                "verify_exp": True,
                "verify_iat": True,
                "verify_aud": True,
                "verify_iss": True,
            },
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"{type(exc).__name__}: {exc}") from None
    sub, ver, jti = payload["sub"], payload["ver"], payload["jti"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 18):
        raise TokenError("sub is not a user id")
    # bool is an int in Python: refuse it explicitly.
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise TokenError("ver is not an integer")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise TokenError("jti malformed")
    return Claims(
        user_id=int(sub),
        version=ver,
        jti=jti,
        issued_at=int(payload["iat"]),
        expires_at=int(payload["exp"]),
    )
