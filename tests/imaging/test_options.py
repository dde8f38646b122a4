"""Delivery parameters: strict parsing, normalised cache keys, Accept negotiation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecogram.errors import AppError
from ecogram.imaging.options import RenderOptions, negotiate, parse_options

CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_17 = (
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
)
OLD_BROWSER = "image/png,image/*;q=0.8,*/*;q=0.5"


def test_defaults() -> None:
    opts = parse_options({})
    assert opts == RenderOptions()
    assert (opts.fit, opts.gravity, opts.fmt, opts.quality, opts.bg, opts.dpr) == (
        "inside", "center", "auto", None, "ffffff", 1.0
    )
    assert opts.target_size() == (None, None)


def test_all_parameters() -> None:
    opts = parse_options(
        {"w": "400", "h": "300", "dpr": "2", "fit": "cover", "g": "attention", "fmt": "webp",
         "q": "70", "bg": "F0a", "v": "abc", "s": "sig"}
    )
    assert opts == RenderOptions(400, 300, 2.0, "cover", "attention", "webp", 70, "ff00aa")
    assert opts.target_size() == (800, 600)
    assert opts.bg_rgb == (255, 0, 170)


def test_dpr_rounds_half_up() -> None:
    assert parse_options({"w": "333", "dpr": "1.5"}).target_size() == (500, None)
    assert parse_options({"h": "101", "dpr": "1.5"}).target_size() == (None, 152)


def test_aliases_and_case() -> None:
    assert parse_options({"fmt": "JPG"}).fmt == "jpeg"
    assert parse_options({"fit": "Cover"}).fit == "cover"
    assert parse_options({"bg": "#ABCDEF"}).bg == "abcdef"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"w": "0"}, "w"),
        ({"w": "10001"}, "w"),
        ({"w": "-5"}, "w"),
        ({"w": "+400"}, "w"),
        ({"w": "4_00"}, "w"),
        ({"w": "400.0"}, "w"),
        ({"w": ""}, "w"),
        ({"w": "abc"}, "w"),
        ({"h": "0"}, "h"),
        ({"h": "1e3"}, "h"),
        ({"dpr": "0.5"}, "dpr"),
        ({"dpr": "5"}, "dpr"),
        ({"dpr": "nan"}, "dpr"),
        ({"dpr": "inf"}, "dpr"),
        ({"dpr": "2x"}, "dpr"),
        ({"fit": "crop"}, "fit"),
        ({"g": "northeast"}, "g"),
        ({"fmt": "gif"}, "fmt"),
        ({"fmt": "svg"}, "fmt"),
        ({"q": "0"}, "q"),
        ({"q": "101"}, "q"),
        ({"q": "high"}, "q"),
        ({"bg": "red"}, "bg"),
        ({"bg": "ffff"}, "bg"),
        ({"bg": "gggggg"}, "bg"),
        ({"width": "400"}, "width"),
        ({"x": "1"}, "x"),
    ],
)
def test_bad_values_name_the_parameter(query: dict[str, str], parameter: str) -> None:
    with pytest.raises(AppError) as caught:
        parse_options(query)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_parameter"
    assert caught.value.details == {"parameter": parameter}
    assert f"'{parameter}'" in caught.value.message


def test_repeated_parameter_is_refused() -> None:
    from multidict import MultiDict

    with pytest.raises(AppError) as caught:
        parse_options(MultiDict([("w", "400"), ("w", "800")]))
    assert caught.value.details == {"parameter": "w"}


def test_cache_key_ignores_spelling_and_defaults() -> None:
    key = parse_options({"w": "400"}).cache_key()
    assert parse_options({"w": "0400", "fit": "inside", "g": "center", "dpr": "1.0",
                          "bg": "FFF", "fmt": "auto", "v": "x"}).cache_key() == key
    # The same device pixels are the same variant.
    assert parse_options({"w": "200", "dpr": "2"}).cache_key() == key
    # Gravity only matters for cover; fit only with both sides.
    assert parse_options({"w": "400", "g": "north"}).cache_key() == key
    assert parse_options({"w": "400", "fit": "cover"}).cache_key() == key
    assert parse_options({"w": "400", "h": "400", "fit": "cover", "g": "north"}).cache_key() != (
        parse_options({"w": "400", "h": "400", "fit": "cover"}).cache_key()
    )
    assert parse_options({"w": "400", "q": "50"}).cache_key() != key
    assert parse_options({"w": "400"}).cache_key("webp") != parse_options({"w": "400"}).cache_key(
        "avif"
    )


@pytest.mark.parametrize(
    ("accept", "has_alpha", "expected"),
    [
        (CHROMIUM, False, "avif"),
        (CHROMIUM, True, "avif"),
        (SAFARI_17, False, "avif"),
        (OLD_BROWSER, False, "jpeg"),
        (OLD_BROWSER, True, "png"),
        ("", False, "jpeg"),
        (None, True, "png"),
        ("*/*", False, "jpeg"),
        ("image/webp", False, "webp"),
        ("image/avif;q=0,image/webp", False, "webp"),
        ("image/avif; q=0.0, image/webp;q=0", True, "png"),
        ("IMAGE/AVIF", False, "avif"),
        ("image/avif;q=abc,image/webp", False, "webp"),
    ],
)
def test_negotiate_auto(accept: str | None, has_alpha: bool, expected: str) -> None:
    assert negotiate("auto", accept, has_alpha) == expected


def test_explicit_format_wins() -> None:
    assert negotiate("jpeg", CHROMIUM, True) == "jpeg"
    assert negotiate("avif", OLD_BROWSER, False) == "avif"


# --- properties --------------------------------------------------------------------------------

sides = st.integers(1, 10_000)
dprs = st.sampled_from(["1", "1.0", "1.5", "2", "2.00", "3", "4"])


@st.composite
def queries(draw: st.DrawFn) -> dict[str, str]:
    query: dict[str, str] = {}
    if draw(st.booleans()):
        query["w"] = str(draw(sides))
    if draw(st.booleans()):
        query["h"] = str(draw(sides))
    for name, values in [
        ("dpr", dprs),
        ("fit", st.sampled_from(["inside", "cover", "contain", "fill"])),
        ("g", st.sampled_from(["center", "attention", "north"])),
        ("fmt", st.sampled_from(["auto", "webp", "jpeg"])),
        ("q", st.integers(1, 100).map(str)),
        ("bg", st.sampled_from(["fff", "ffffff", "000", "12ab34"])),
        ("v", st.text("abc123", min_size=1, max_size=4)),
    ]:
        if draw(st.booleans()):
            query[name] = draw(values)
    return query


def _respell(query: dict[str, str]) -> dict[str, str]:
    """Same meaning, other spelling, other order."""
    out = {}
    for name, value in reversed(list(query.items())):
        if name in ("w", "h", "q"):
            value = "0" + value
        elif name in ("fit", "g", "fmt"):
            value = value.upper()
        elif name == "bg" and len(value) == 3:
            value = "".join(c * 2 for c in value).upper()
        elif name == "dpr":
            value = f"{float(value):.3f}"
        out[name] = value
    return out


@given(queries())
def test_cache_key_is_stable_under_respelling(query: dict[str, str]) -> None:
    assert parse_options(query).cache_key() == parse_options(_respell(query)).cache_key()


@given(queries(), queries())
def test_different_renders_have_different_keys(a: dict[str, str], b: dict[str, str]) -> None:
    oa, ob = parse_options(a), parse_options(b)
    if oa.cache_key() == ob.cache_key():
        assert oa.target_size() == ob.target_size()
        assert (oa.fmt, oa.quality, oa.bg) == (ob.fmt, ob.quality, ob.bg)
