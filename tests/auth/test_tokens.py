"""Every forged, stale or malformed token is a 401 in the JSON error shape, with the challenge."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from ecogram.auth import tokens
from tests.auth.conftest import bearer, claims_of, token_of
from tests.conftest import TEST_SECRET, assert_error


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(payload: dict, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


async def assert_refused(client, token: str) -> None:
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    assert_error(await response.json(), "unauthorized")
    # The server is fine afterwards.
    assert (await client.get("/healthz")).status == 200


@pytest.fixture
async def viewer(login_as):
    """A live viewer token and its claims."""
    token = token_of(await login_as("viewer"))
    return token, claims_of(token)


async def test_a_genuine_token_carries_every_claim_and_works(client, viewer):
    token, claims = viewer
    assert set(tokens.REQUIRED_CLAIMS) <= set(claims)
    assert claims["iss"] == tokens.ISSUER and claims["aud"] == tokens.AUDIENCE
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    response = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status == 200
    # The control for the forgeries below: our own re-signing of the same claims is accepted,
    # so each refusal is for the one thing the forgery changed.
    assert (await client.get("/api/v1/auth/me", headers=bearer(signed(claims)))).status == 200


async def test_alg_none_is_refused(client, viewer):
    _, claims = viewer
    for alg in ("none", "None", "NONE"):
        await assert_refused(client, f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}.")


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_another_algorithm_with_the_right_key_is_refused(client, viewer, algorithm):
    _, claims = viewer
    await assert_refused(client, signed(claims, algorithm=algorithm))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS256", "EdDSA"])
async def test_an_asymmetric_algorithm_is_refused(client, viewer, algorithm):
    # Key confusion: an RS256 token "signed" with the HMAC secret as if it were a public key.
    _, claims = viewer
    header = b64({"alg": algorithm, "typ": "JWT"})
    signing_input = f"{header}.{b64(claims)}".encode()
    signature = b64(hmac.new(TEST_SECRET.encode(), signing_input, hashlib.sha256).digest())
    await assert_refused(client, f"{header}.{b64(claims)}.{signature}")


async def test_a_wrong_key_is_refused(client, viewer):
    _, claims = viewer
    await assert_refused(client, signed(claims, key="another-secret-key-that-is-long-enough-42"))


async def test_a_changed_payload_is_refused(client, login_as, viewer):
    token, claims = viewer
    admin_claims = claims_of(token_of(await login_as("admin")))
    header, _, signature = token.split(".")
    # Claim to be the admin, keeping the viewer's signature.
    forged = {**claims, "sub": admin_claims["sub"]}
    await assert_refused(client, f"{header}.{b64(forged)}.{signature}")
    # Stretching the expiry is a changed payload too.
    await assert_refused(client, f"{header}.{b64({**claims, 'exp': claims['exp'] + 9999})}."
                                 f"{signature}")


async def test_a_tampered_signature_is_refused(client, viewer):
    token, _ = viewer
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    await assert_refused(client, f"{head}.{payload}.{flipped}")
    await assert_refused(client, f"{head}.{payload}")


async def test_an_expired_token_is_refused(client, viewer):
    _, claims = viewer
    now = int(time.time())
    await assert_refused(client, signed({**claims, "iat": now - 7200, "exp": now - 3600}))
    await assert_refused(client, signed({**claims, "iat": now - 120, "exp": now - 60}))


async def test_a_token_issued_in_the_future_is_refused(client, viewer):
    _, claims = viewer
    now = int(time.time())
    await assert_refused(client, signed({**claims, "iat": now + 3600, "exp": now + 7200}))


@pytest.mark.parametrize("claim", tokens.REQUIRED_CLAIMS)
async def test_a_missing_claim_is_refused(client, viewer, claim):
    _, claims = viewer
    await assert_refused(client, signed({k: v for k, v in claims.items() if k != claim}))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "someone-else"),
        ("aud", "another-api"),
        ("sub", "not-a-number"),
        ("sub", 1),
        ("sub", "99999"),  # no such user
        ("ver", "1"),
        ("ver", True),
        ("ver", 999),  # not the user's token_version
        ("jti", 12345),
        ("exp", "tomorrow"),
    ],
)
async def test_a_wrong_claim_value_is_refused(client, viewer, claim, value):
    _, claims = viewer
    await assert_refused(client, signed({**claims, claim: value}))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Basic YWRtaW46cGFzc3dvcmQ=",
        "Bearer " + "x" * 5000,  # above our limit, below aiohttp's line limit
        "Token abc",
    ],
)
async def test_malformed_authorization_headers_are_refused(client, viewer, header):
    response = await client.get("/api/v1/auth/me", headers={"Authorization": header})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(await response.json(), "unauthorized")


async def test_no_credentials_is_a_401_with_the_challenge(client):
    response = await client.get("/api/v1/auth/me")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ecogram"'
    assert_error(await response.json(), "unauthorized")


def test_decode_pins_the_algorithm_and_requires_every_claim():
    issued = tokens.issue(TEST_SECRET, 7, 3, 60)
    claims = tokens.decode(TEST_SECRET, issued.token)
    assert (claims.user_id, claims.version, claims.jti) == (7, 3, issued.claims.jti)
    payload = claims_of(issued.token)
    with pytest.raises(tokens.TokenError):
        tokens.decode(TEST_SECRET, jwt.encode(payload, TEST_SECRET, algorithm="HS512"))
    with pytest.raises(tokens.TokenError):
        tokens.decode("x" * 40, issued.token)
    for claim in tokens.REQUIRED_CLAIMS:
        partial = {k: v for k, v in payload.items() if k != claim}
        with pytest.raises(tokens.TokenError):
            tokens.decode(TEST_SECRET, jwt.encode(partial, TEST_SECRET, algorithm="HS256"))


def test_each_token_has_its_own_jti():
    first = tokens.issue(TEST_SECRET, 1, 1, 60)
    second = tokens.issue(TEST_SECRET, 1, 1, 60)
    assert first.claims.jti != second.claims.jti
