"""Hazard: sizes outside ECOGRAM_ALLOWED_SIZES (a render and a cache entry per size) for anyone.

Refused with 400 listing the allowed sizes, unless the URL carries a valid HMAC signature; a
forged or altered signature is refused too, and nothing else is affected.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.parse

import pytest

from ecogram.catalog import signing
from ecogram.settings import DEFAULT_ALLOWED_SIZES
from tests.conftest import TEST_SECRET, assert_error
from tests.views.cdn_support import decode, fixture_bytes, publish

ALLOWED = [int(size) for size in DEFAULT_ALLOWED_SIZES.split(",")]


@pytest.fixture
def settings(settings):
    return settings.replace(eager_widths=(), channels=())


async def _signed(client, login_as, image_id: int, query: str) -> str:
    response = await client.get(f"/api/v1/images/{image_id}/signed-url?{query}",
                                headers=await login_as("importer"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["url"].endswith(body["path"])
    return body["path"]


async def test_sizes_outside_the_list_are_refused_with_the_list(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SIG-1")
    assert (await client.get("/img/SIG-1?w=400")).status == 200
    assert (await client.get("/img/SIG-1?w=200&dpr=2")).status == 200  # 400 device pixels
    for query, parameter in (("w=401", "w"), ("h=333", "h"), ("w=400&dpr=1.1", "dpr"),
                             ("w=400&h=401&fit=cover", "h"), ("w=10000", "w")):
        response = await client.get(f"/img/SIG-1?{query}")
        assert response.status == 400, query
        body = await response.json()
        assert_error(body, "size_not_allowed")
        assert body["error"]["details"]["parameter"] == parameter
        assert body["error"]["details"]["allowed"] == ALLOWED
        assert response.headers["Cache-Control"] == "no-store"


async def test_a_signed_url_may_use_any_size(client, login_as):
    record = await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SIG-2")
    path = await _signed(client, login_as, record["id"], "w=401&fmt=webp")
    assert f"v={record['version']}" in path
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert decode(await response.read()).width == 401
    # The parameters in another order and spelled-out encoding: the same canonical request.
    parts = urllib.parse.urlsplit(path)
    shuffled = "&".join(reversed(parts.query.split("&")))
    assert (await client.get(f"{parts.path}?{shuffled}")).status == 200


async def test_forged_or_altered_signatures_are_refused(client, login_as):
    record = await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SIG-3")
    path = await _signed(client, login_as, record["id"], "w=401")
    parts = urllib.parse.urlsplit(path)
    params = dict(urllib.parse.parse_qsl(parts.query))
    good = params["s"]
    forged_key = signing.sign("another-secret-key-of-the-same-length-000000",
                              parts.path, [(k, v) for k, v in params.items()])
    attempts = {
        "altered size": {**params, "w": "402"},
        "added parameter": {**params, "q": "10"},
        "dropped parameter": {k: v for k, v in params.items() if k != "v"},
        "other image": params,  # on another path below
        "forged key": {**params, "s": forged_key},
        "truncated": {**params, "s": good[:-2]},
        "garbage": {**params, "s": "not-a-signature"},
        "non-ascii": {**params, "s": "é" * 43},
        "empty": {**params, "s": ""},
    }
    for name, query in attempts.items():
        target = "/img/SIG-3/1" if name != "other image" else "/img/SIG-OTHER/1"
        response = await client.get(f"{target}?{urllib.parse.urlencode(query)}")
        assert response.status == 403, name  # well formed, but a key that does not open
        body = await response.json()
        assert_error(body, "invalid_signature")
        assert body["error"]["details"]["parameter"] == "s"
    # The genuine URL still works, and so does the server.
    assert (await client.get(path)).status == 200


async def test_the_sign_api_checks_its_input_and_role(client, login_as):
    record = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "SIG-4")
    response = await client.get(f"/api/v1/images/{record['id']}/signed-url?w=abc",
                                headers=await login_as("importer"))
    assert response.status == 400
    assert_error(await response.json(), "invalid_parameter")
    viewer = await client.get(f"/api/v1/images/{record['id']}/signed-url?w=401",
                              headers=await login_as("viewer"))
    assert viewer.status == 403
    anonymous = await client.get(f"/api/v1/images/{record['id']}/signed-url?w=401")
    assert anonymous.status == 401
    missing = await client.get("/api/v1/images/999999/signed-url?w=401",
                               headers=await login_as("importer"))
    assert missing.status == 404


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecogram", *args], capture_output=True,
                          text=True, env=env, check=False, timeout=60)


async def test_the_cli_signs_urls_the_server_accepts(client, login_as, settings):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SIGÉ-5")
    env = {**os.environ, "ECOGRAM_SECRET_KEY": TEST_SECRET,
           "ECOGRAM_PUBLIC_URL": "https://img.shop.example"}
    result = await asyncio.to_thread(
        _cli, env, "sign-url", "/img/SIG%C3%89-5/1", "--w", "333", "--fmt", "png")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("https://img.shop.example/img/SIG%C3%89-5/1?")
    response = await client.get(url.removeprefix("https://img.shop.example"))
    assert response.status == 200, await response.text()
    assert decode(await response.read()).width == 333
    refused = await asyncio.to_thread(_cli, env, "sign-url", "/img/X", "--w", "abc")
    assert refused.returncode == 2 and "'w'" in refused.stderr
