"""Signed /img URLs: sizes outside ECOGRAM_ALLOWED_SIZES for whoever holds a signature.

``s`` is the URL-safe base64 (no padding) of HMAC-SHA256 with the secret key over the
*canonical* request: the decoded path, ``?``, then every query parameter except ``s``, sorted by
name then value, each percent-encoded the same way. So the order or spelling of the encoding in
the URL does not matter, while any change of a name or value does. Signatures are compared with
``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable, Mapping

SIGNATURE_PARAM = "s"


def _encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-._~")


def canonical(path: str, params: Iterable[tuple[str, str]]) -> bytes:
    """The exact bytes that are signed for ``path`` and these query parameters."""
    items = sorted((k, v) for k, v in params if k != SIGNATURE_PARAM)
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in items)
    return f"{path}?{query}".encode()


def sign(secret: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    digest = hmac.new(secret.encode(), canonical(path, params), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(secret: str, path: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    expected = sign(secret, path, params)
    # Compare as bytes: compare_digest refuses non-ASCII str, and a signature is never one.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def signed_query(secret: str, path: str, params: Mapping[str, str]) -> str:
    """``k=v&...&s=SIG`` for these parameters (``s`` in the input is ignored)."""
    items = sorted((k, str(v)) for k, v in params.items() if k != SIGNATURE_PARAM)
    signature = sign(secret, path, items)
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in items)
    return f"{query}&{SIGNATURE_PARAM}={signature}" if query else f"{SIGNATURE_PARAM}={signature}"


def signed_path(secret: str, path: str, params: Mapping[str, str]) -> str:
    """The signed URL path and query. ``path`` is the decoded path (``/img/SKU 1/2``)."""
    quoted = urllib.parse.quote(path, safe="/")
    return f"{quoted}?{signed_query(secret, path, params)}"
