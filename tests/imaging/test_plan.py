"""Dimension math of every fit, with dpr, never enlarging unless asked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecogram.imaging.options import RenderOptions
from ecogram.imaging.pipeline import plan


def out(src: tuple[int, int], **kwargs: object) -> tuple[int, int]:
    return plan(RenderOptions(**kwargs), *src).out  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (2000, 1000)),
        ({"width": 400}, (400, 200)),
        ({"height": 100}, (200, 100)),
        ({"width": 400, "dpr": 2.0}, (800, 400)),
        ({"width": 333, "dpr": 1.5}, (500, 250)),
        ({"width": 400, "height": 400}, (400, 200)),
        ({"width": 400, "height": 100}, (200, 100)),
        ({"width": 4000}, (2000, 1000)),  # never enlarged
        ({"width": 1500, "dpr": 2.0}, (2000, 1000)),
        ({"width": 3000, "height": 3000}, (2000, 1000)),
        ({"width": 400, "fit": "cover"}, (400, 200)),  # one side: aspect kept, any fit
        ({"height": 100, "fit": "fill"}, (200, 100)),
        ({"width": 400, "fit": "contain"}, (400, 200)),
    ],
)
def test_inside_and_single_side(kwargs: dict[str, object], expected: tuple[int, int]) -> None:
    assert out((2000, 1000), **kwargs) == expected


def test_cover() -> None:
    p = plan(RenderOptions(400, 400, fit="cover"), 2000, 1000)
    assert p.resize == (800, 400)
    assert p.crop == p.out == (400, 400)
    # Box larger than the source: scaled down, aspect kept, nothing enlarged.
    p = plan(RenderOptions(3000, 1500, fit="cover"), 2000, 1000)
    assert p.out == (2000, 1000) and p.resize == (2000, 1000)
    p = plan(RenderOptions(4000, 4000, fit="cover"), 2000, 1000)
    assert p.out == (1000, 1000) and p.resize == (2000, 1000)
    p = plan(RenderOptions(300, 200, dpr=2.0, fit="cover"), 2000, 1000)
    assert p.out == (600, 400) and p.resize == (800, 400)


def test_contain_canvas_is_what_was_asked() -> None:
    p = plan(RenderOptions(400, 400, fit="contain"), 2000, 1000)
    assert p.resize == (400, 200) and p.out == (400, 400)
    p = plan(RenderOptions(3000, 3000, fit="contain"), 2000, 1000)
    assert p.resize == (2000, 1000) and p.out == (3000, 3000)  # content not enlarged


def test_fill_stretches_to_exactly_the_box() -> None:
    assert out((2000, 1000), width=300, height=300, fit="fill") == (300, 300)
    assert out((2000, 1000), width=200, height=100, dpr=2.0, fit="fill") == (400, 200)


def test_tiny_results_keep_at_least_one_pixel() -> None:
    assert out((10_000, 10), width=1) == (1, 1)
    p = plan(RenderOptions(1, 1000, fit="cover"), 10, 10)
    assert p.out == (1, 10) and min(p.resize) >= 1


src_sides = st.integers(1, 6000)
req_sides = st.none() | st.integers(1, 10_000)
dprs = st.sampled_from([1.0, 1.25, 1.5, 2.0, 3.0, 4.0])


@given(src_sides, src_sides, req_sides, req_sides, dprs, st.sampled_from(["inside", "cover"]))
def test_inside_and_cover_never_enlarge(
    sw: int, sh: int, w: int | None, h: int | None, dpr: float, fit: str
) -> None:
    p = plan(RenderOptions(w, h, dpr, fit), sw, sh)
    ow, oh = p.out
    assert 1 <= ow <= sw and 1 <= oh <= sh
    rw, rh = p.resize
    assert ow <= rw <= sw and oh <= rh <= sh
    tw, th = RenderOptions(w, h, dpr).target_size()
    if tw is not None:
        assert ow <= tw
    if th is not None:
        assert oh <= th


@given(src_sides, src_sides, req_sides, req_sides, dprs)
def test_inside_keeps_aspect_and_hits_the_binding_side(
    sw: int, sh: int, w: int | None, h: int | None, dpr: float
) -> None:
    ow, oh = plan(RenderOptions(w, h, dpr), sw, sh).out
    tw, th = RenderOptions(w, h, dpr).target_size()
    # Aspect kept to within the rounding of one pixel on the derived side.
    assert abs(ow * sh - oh * sw) <= max(sw, sh)
    if (ow, oh) != (sw, sh):
        assert ow == tw or oh == th


@given(src_sides, src_sides, st.integers(1, 10_000), st.integers(1, 10_000), dprs)
def test_cover_box_has_the_asked_aspect(sw: int, sh: int, w: int, h: int, dpr: float) -> None:
    p = plan(RenderOptions(w, h, dpr, "cover"), sw, sh)
    tw, th = RenderOptions(w, h, dpr).target_size()
    assert tw is not None and th is not None
    bw, bh = p.out
    if (bw, bh) == (tw, th):
        return
    # Scaled down: aspect of the asked box within rounding, and one side is the source's.
    assert abs(bw * th - bh * tw) <= max(tw, th)
    assert bw == sw or bh == sh or min(bw, bh) == 1


@given(src_sides, src_sides, st.integers(1, 10_000), st.integers(1, 10_000))
def test_contain_content_fits_and_is_never_enlarged(sw: int, sh: int, w: int, h: int) -> None:
    p = plan(RenderOptions(w, h, fit="contain"), sw, sh)
    assert p.out == (w, h)
    assert p.resize[0] <= min(w, sw) and p.resize[1] <= min(h, sh)
