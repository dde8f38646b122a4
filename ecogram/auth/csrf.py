"""CSRF tokens for cookie-authenticated requests: an HMAC of the session token's jti.

Nothing is stored: the token is derived from the secret key and the session, so it changes with
every sign-in and dies with the session. Bearer requests need none (a browser never adds the
Authorization header on its own).
"""

from __future__ import annotations

import hashlib
import hmac

FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_PURPOSE = b"ecogram-csrf-v1:"  # domain separation from the other uses of the secret key


def token_for(secret_key: str, jti: str) -> str:
    return hmac.new(secret_key.encode(), _PURPOSE + jti.encode(), hashlib.sha256).hexdigest()


def is_valid(secret_key: str, jti: str, candidate: str | None) -> bool:
    if not candidate or len(candidate) > 128:
        return False
    # Compared as bytes: compare_digest refuses non-ASCII str, and a client may send any bytes
    # (aiohttp keeps those that are not UTF-8 as surrogates, hence surrogatepass).
    expected = token_for(secret_key, jti).encode()
    return hmac.compare_digest(expected, candidate.encode("utf-8", "surrogatepass"))
