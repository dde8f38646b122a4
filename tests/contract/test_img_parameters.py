"""/img's query is parsed by hand on the hot path (``ecogram.imaging.options``,
``ecogram.catalog.delivery``); its document comes from ``ecogram.models.ImgQuery``. This test
holds the two together: the same names, and for each parameter a set of spellings the server
must accept exactly when the document's schema does.

The leniencies the document states in words (letter case, blanks around a value, leading zeros,
the aliases jpg/centre/smart) are spellings of a documented value, normalised to it; they are
listed here, and each must render the same variant as the canonical value.
"""

from __future__ import annotations

import urllib.parse

import jsonschema
import pytest

from ecogram.imaging.options import KNOWN
from tests.views.cdn_support import fixture_bytes, publish

# Spellings to try, per parameter (the photo is 'IMG-DOC' at position 1).
PROBES = {
    "w": ["400", "401", "48", "2048", "0", "-1", "abc", "", "4e2", "400.0", "10000", "99999"],
    "h": ["300", "333", "100", "0", "x"],
    "dpr": ["1", "1.5", "2", "3.25", "4", "4.0", "4.000001", "0.5", "5", "1e0", "nan", "",
            "1.1234567", "1."],
    "fit": ["inside", "cover", "contain", "fill", "stretch", ""],
    "g": ["center", "attention", "entropy", "north", "south", "east", "west", "middle", ""],
    "fmt": ["auto", "avif", "webp", "jpeg", "png", "gif", ""],
    "q": ["1", "50", "100", "0", "101", "50.0", "x", ""],
    "bg": ["fff", "#fff", "f0e0d0", "#F0E0D0", "ggg", "ffff", ""],
    "v": ["1", "0", "12345678901", "-1", "", "a"],
    "preset": ["mercadolivre", "shopee", "no_such", "ML", "", "mercado-livre"],
}
# Other spellings of documented values, which the document describes in words.
LENIENT = {
    ("w", "0400"): "400", ("q", "050"): "50", ("fit", "COVER"): "cover",
    ("fit", " cover "): "cover", ("g", "centre"): "center", ("g", "smart"): "attention",
    ("fmt", "jpg"): "jpeg", ("fmt", "WEBP"): "webp", ("bg", " fff"): "fff",
}
# Parameters whose valid values need a partner to be served (fit/g matter with w and h; the
# others are probed alone).
PARTNERS = {"fit": "&w=400&h=300", "g": "&w=400&h=300&fit=cover", "h": "&fit=inside"}


def _as_query_value(schema: dict, raw: str):
    """What a client following the document sends for ``raw``: integers and numbers as JSON
    scalars (``4e2`` is no integer); text as it is."""
    if schema.get("type") == "integer" and not raw.lstrip("-").isdigit():
        return raw  # "400.0", "4e2": not how an integer is written in a query
    if schema.get("type") in ("integer", "number"):
        try:
            value = float(raw) if "." in raw or "e" in raw.lower() else int(raw)
        except ValueError:
            return raw  # not a number: the schema says no
        if str(value) != raw:  # "0400", "4.0" are not how a number is written
            return raw
        return value
    return raw


async def test_the_document_names_what_the_parser_knows(client):
    document = await (await client.get("/api/openapi.json")).json()
    for path in ("/img/{code}", "/img/{code}/{position}"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]
                 if p["in"] == "query"}
        assert names == set(KNOWN) | {"preset"}, path


@pytest.mark.parametrize("name", sorted(PROBES))
async def test_the_server_accepts_exactly_what_the_document_allows(client, login_as, name):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "IMG-DOC")
    document = await (await client.get("/api/openapi.json")).json()
    schemas = {p["name"]: p["schema"]
               for p in document["paths"]["/img/{code}/{position}"]["get"]["parameters"]
               if p["in"] == "query"}
    schema = schemas[name]
    for raw in PROBES[name]:
        value = _as_query_value(schema, raw)
        documented = jsonschema.Draft202012Validator(schema).is_valid(value)
        partner = "&v=1" if name == "preset" else PARTNERS.get(name, "")
        query = f"{name}={urllib.parse.quote(raw)}{partner}"
        response = await client.get(f"/img/IMG-DOC/1?{query}",
                                    headers={"Accept": "image/webp"})
        accepted = response.status in (200, 304)
        assert accepted == documented, (name, raw, response.status, await response.text())


@pytest.mark.parametrize(("spelling", "canonical"), sorted(LENIENT.items()))
async def test_lenient_spellings_serve_the_documented_value(client, login_as, spelling,
                                                            canonical):
    name, raw = spelling
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "IMG-LENIENT")
    partner = PARTNERS.get(name, "") if name != "w" else ""
    base = f"/img/IMG-LENIENT/1?fmt=webp{partner}" if name != "fmt" else "/img/IMG-LENIENT/1?"
    loose = await client.get(f"{base}&{name}={urllib.parse.quote(raw)}")
    exact = await client.get(f"{base}&{name}={canonical}")
    assert loose.status == exact.status == 200
    assert loose.headers["ETag"] == exact.headers["ETag"]
