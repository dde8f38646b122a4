"""Pure parts of the delivery use case: source choice, ETag matching, version tokens, signing."""

from __future__ import annotations

import pytest

from ecogram.catalog import signing
from ecogram.catalog.delivery import Delivery, Resolved, etag_matches, sign_path, version_token
from ecogram.errors import AppError
from ecogram.imaging.options import RenderOptions


def _resolved(width=4000, height=3000, master=(2048, 1536)) -> Resolved:
    return Resolved(1, "C", 1, 7, "Thu, 01 Jan 2026 00:00:00 GMT", width, height, False,
                    "L00000fQfQfQfQfQfQfQfQfQfQfQ", "#ffffff", *master)


@pytest.mark.parametrize(("opts", "kind"), [
    (RenderOptions(width=400), "master"),
    (RenderOptions(width=2048), "master"),
    (RenderOptions(width=2049), "original"),
    (RenderOptions(), "original"),  # the original size
    (RenderOptions(width=1000, dpr=2.5), "original"),
    (RenderOptions(width=1000, dpr=2), "master"),
    (RenderOptions(width=1500, height=1500, fit="cover"), "master"),  # 2000x1500 resize
    (RenderOptions(width=1600, height=1600, fit="cover"), "original"),
    (RenderOptions(width=3000, height=100, fit="fill"), "original"),  # stretched: asked for
    (RenderOptions(width=2000, height=2000, fit="contain"), "master"),  # 2000x1500 inside
    (RenderOptions(width=3000, height=3000, fit="contain"), "original"),  # 3000x2250 inside
])
def test_the_master_serves_every_size_it_can_fill(opts, kind):
    chosen, width, height = Delivery.source_for(_resolved(), opts)
    assert chosen == kind
    assert (width, height) == ((2048, 1536) if kind == "master" else (4000, 3000))


def test_etag_matching_is_weak_and_takes_lists():
    assert etag_matches('"a"', '"a"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches('"b", W/"a"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"ab"', '"a"')
    assert not etag_matches("", '"a"')


def test_version_token():
    assert version_token({}) is None
    assert version_token({"v": "12"}) == 12
    for bad in ("", "x", "-1", "1.0", "12345678901"):
        with pytest.raises(AppError) as caught:
            version_token({"v": bad})
        assert caught.value.details == {"parameter": "v"}


def test_signatures_cover_path_and_every_parameter_but_not_their_order():
    secret = "k" * 40
    params = [("w", "401"), ("fmt", "webp")]
    signature = signing.sign(secret, "/img/A/1", params)
    assert "=" not in signature and len(signature) == 43
    assert signing.verify(secret, "/img/A/1", list(reversed(params)), signature)
    assert signing.verify(secret, "/img/A/1", [*params, ("s", "ignored")], signature)
    assert not signing.verify(secret, "/img/A/2", params, signature)
    assert not signing.verify(secret, "/img/A/1", [("w", "402"), ("fmt", "webp")], signature)
    assert not signing.verify(secret, "/img/A/1", [*params, ("q", "1")], signature)
    assert not signing.verify("x" * 40, "/img/A/1", params, signature)
    # "w=1&h=2" is not "w=1&h=2" smuggled into one value
    assert signing.canonical("/p", [("w", "1&h=2")]) != signing.canonical(
        "/p", [("w", "1"), ("h", "2")])


def test_sign_path_accepts_encoded_or_plain_paths_and_checks_options():
    secret = "k" * 40
    assert sign_path(secret, "/img/É/1", {"w": "5"}) == sign_path(secret, "/img/%C3%89/1",
                                                                  {"w": "5"})
    assert sign_path(secret, "/img/É/1", {"w": "5"}).startswith("/img/%C3%89/1?w=5&s=")
    with pytest.raises(AppError):
        sign_path(secret, "/img/A", {"w": "big"})
