"""Fixtures for the management, review and export API tests (issue 6).

Named ``make_image*`` so they never clash with other suites' fixtures. Photos go in through the
real import API, so the records tested are exactly what an import stores.
"""

from __future__ import annotations

import itertools

import aiohttp
import pytest

from tests.catalog.photos import make_photo


@pytest.fixture
def make_image(client, login_as):
    """``await make_image(code, status=..., product=..., alt=...)`` → the API record."""
    seeds = itertools.count(1000)

    async def make(code: str = "SKU-1", *, status: str = "pending", product: str = "",
                   alt: str = "", photo: bytes | None = None, filename: str | None = None,
                   position: int | None = None) -> dict:
        seed = next(seeds)
        data = aiohttp.FormData(default_to_multipart=True)
        data.add_field("file", photo or make_photo(seed), filename=filename or f"p{seed}.jpg",
                       content_type="application/octet-stream")
        data.add_field("code", code)
        if product:
            data.add_field("product", product)
        if alt:
            data.add_field("alt", alt)
        if position is not None:
            data.add_field("position", str(position))
        headers = await login_as("importer")
        response = await client.post("/api/v1/images", data=data, headers=headers)
        body = await response.json()
        assert response.status == 201, body
        record = body["items"][0]["record"]
        if status != "pending":
            reviewer = await login_as("reviewer")
            action = {"approved": "approve", "rejected": "reject"}[status]
            response = await client.post(f"/api/v1/images/{record['id']}/{action}",
                                         json={"reason": "test"}, headers=reviewer)
            assert response.status == 200, await response.text()
            record = await response.json()
        return record

    return make
