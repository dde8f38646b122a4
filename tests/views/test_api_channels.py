"""``/api/v1/channels``: the profiles, one profile, and readiness — access, filters, errors and
the language of the findings."""

from __future__ import annotations

import pytest

from ecogram import keys
from ecogram.channels import load_profiles
from tests.catalog.test_channels import product_photo
from tests.conftest import assert_error


async def test_the_profiles_are_listed_for_viewers_with_the_enabled_flag(client, login_as):
    response = await client.get("/api/v1/channels")
    assert response.status == 401
    response = await client.get("/api/v1/channels", headers=await login_as("viewer"))
    assert response.status == 200
    items = (await response.json())["items"]
    assert [item["id"] for item in items] == list(load_profiles())
    enabled = {item["id"] for item in items if item["enabled"]}
    assert enabled == {"mercadolivre", "amazon_br", "magalu", "shopee", "google"}
    meli = items[0]
    assert (meli["name"], meli["formats"], meli["max_side"], meli["fill"]) == (
        "Mercado Livre", ["jpeg", "png"], 1920, 0.95)
    assert meli["sources"][0].startswith("https://developers.mercadolivre.com.br/")


async def test_one_profile_and_an_unknown_one(client, login_as):
    headers = await login_as("viewer")
    response = await client.get("/api/v1/channels/vtex", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert (body["id"], body["max_bytes"], body["enabled"]) == ("vtex", 4_000_000, False)
    for path in ("/api/v1/channels/ebay", "/api/v1/channels/ebay/readiness",
                 "/api/v1/channels/VTEX/readiness"):
        response = await client.get(path, headers=headers)
        assert response.status == 404, path
        assert_error(await response.json(), "not_found")


@pytest.mark.parametrize(("query", "field"), [
    ("status=maybe", "status"),
    ("ready=yes", "ready"),
    ("per_page=101", "per_page"),
    ("per_page=0", "per_page"),
    ("page=0", "page"),
    ("page=x", "page"),
    ("code=A%00B", "code"),
    ("status=app%00roved", "status"),
    ("ready=tr%00ue", "ready"),
])
async def test_bad_filters_are_422_naming_the_field(client, login_as, query, field):
    response = await client.get(f"/api/v1/channels/mercadolivre/readiness?{query}",
                                headers=await login_as("viewer"))
    assert response.status == 422, query
    body = await response.json()
    assert_error(body, "invalid_fields")
    assert field in body["error"]["details"]["fields"]


async def test_readiness_through_the_api_in_both_languages(client, login_as, make_image):
    small = await make_image("SKU-SMALL", status="approved", product="Caneca",
                             photo=product_photo(1, 300, 300))
    await make_image("SKU-OK", status="approved", product="Bolsa",
                     photo=product_photo(2, 800, 800, share=0.97))
    await make_image("SKU-OK", status="pending", photo=product_photo(3, 800, 800))
    await client.app[keys.geometry].drain()  # the approvals' hooks measure in the background
    headers = await login_as("viewer")

    response = await client.get("/api/v1/channels/mercadolivre/readiness", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Language"] == "en"
    body = await response.json()
    assert body["channel"] == {"id": "mercadolivre", "name": "Mercado Livre"}
    assert (body["total"], body["page"], body["per_page"], body["status"]) == (
        2, 1, 50, "approved")
    assert body["summary"] == {"products": 2, "ready": 1, "not_ready": 1, "photos": 2,
                               "findings": {"too_small": 1}}
    by_code = {item["code"]: item for item in body["items"]}
    assert by_code["SKU-OK"] == {
        "code": "SKU-OK", "product": "Bolsa", "ready": True, "photos": 1, "findings": [],
        "images": [{"id": by_code["SKU-OK"]["images"][0]["id"], "position": 1, "main": True,
                    "ready": True, "findings": []}]}
    (photo,) = by_code["SKU-SMALL"]["images"]
    assert photo["id"] == small["id"] and photo["ready"] is False
    assert photo["findings"] == [{
        "code": "too_small", "fixable": False,
        "message": "The photo is 300 × 300 px; Mercado Livre needs at least 500 px on the "
                   "long side."}]

    response = await client.get("/api/v1/channels/mercadolivre/readiness?ready=false",
                                headers={**headers, "Accept-Language": "pt-BR,pt;q=0.9"})
    assert response.headers["Content-Language"] == "pt-BR"
    body = await response.json()
    assert [item["code"] for item in body["items"]] == ["SKU-SMALL"] and body["total"] == 1
    assert body["items"][0]["images"][0]["findings"][0]["message"] == (
        "A foto tem 300 × 300 px; Mercado Livre exige pelo menos 500 px no lado maior.")

    # Filters: code (repeated or comma-separated), status, pages.
    response = await client.get(
        "/api/v1/channels/mercadolivre/readiness?code=SKU-OK&status=all&per_page=1",
        headers=headers)
    body = await response.json()
    (item,) = body["items"]
    assert [p["position"] for p in item["images"]] == [1, 2] and item["photos"] == 2
    response = await client.get("/api/v1/channels/mercadolivre/readiness?page=2&per_page=1",
                                headers=headers)
    assert [i["code"] for i in (await response.json())["items"]] == ["SKU-SMALL"]


async def test_the_settings_file_reaches_the_api(aiohttp_client, settings, tmp_path):
    extra = tmp_path / "channels.toml"
    extra.write_text('[lojaintegrada]\nname = "Loja Integrada"\nmin_side = 600\n',
                     encoding="utf-8")
    from ecogram.app import create_app

    client = await aiohttp_client(create_app(settings.replace(
        channels_file=extra, channels=("lojaintegrada",))))
    # login_as is bound to the default client: register straight on this one.
    creds = {"email": "a@example.com", "name": "A", "password": "correct horse battery staple"}
    assert (await client.post("/api/v1/auth/register", json=creds)).status == 201
    token = (await (await client.post("/api/v1/auth/login", json=creds)).json())["access_token"]
    response = await client.get("/api/v1/channels/lojaintegrada",
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    body = await response.json()
    assert (body["name"], body["min_side"], body["enabled"]) == ("Loja Integrada", 600, True)
