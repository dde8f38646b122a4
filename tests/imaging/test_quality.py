"""Calibrated quality (ecogram.imaging.quality): real pixels, real encoders, real SSIMULACRA2,
the service's real render pipeline."""

from __future__ import annotations

import pytest
import pyvips

from ecogram.imaging import pipeline, quality
from ecogram.imaging.options import RenderOptions

SIDE = 256  # small: each comparison costs ~30 ms here, a search about six of them


def flat_product() -> pyvips.Image:
    """A flat grey box with a yellow label on pure white, as catalogue shots are."""
    white = (pyvips.Image.black(SIDE, SIDE, bands=3) + 255).cast("uchar")
    box = pyvips.Image.black(SIDE // 2, SIDE // 2).new_from_image([120, 140, 170]).cast("uchar")
    label = pyvips.Image.black(SIDE // 4, SIDE // 8).new_from_image([230, 200, 60]).cast("uchar")
    return white.insert(box.insert(label, SIDE // 8, SIDE // 6), SIDE // 4, SIDE // 4).copy(
        interpretation="srgb")


def noisy_photo() -> pyvips.Image:
    """Gradients under heavy noise: every detail the encoder drops shows."""
    x = pyvips.Image.xyz(SIDE, SIDE)[0]
    base = (x / SIDE * 200 + 20).bandjoin([x / SIDE * 80 + 60, 255 - x / SIDE * 200])
    noise = pyvips.Image.gaussnoise(SIDE, SIDE, sigma=28, seed=1).bandjoin(
        [pyvips.Image.gaussnoise(SIDE, SIDE, sigma=28, seed=seed) for seed in (2, 3)]) - 128
    return (base + noise).cast("uchar").copy(interpretation="srgb")


def alone(image: pyvips.Image) -> quality.View:
    """The image as its own reference, encoded directly."""
    return quality.plain(quality.prepare(image, SIDE))


def test_identical_scores_100_and_a_harsh_encode_scores_lower():
    reference = quality.prepare(noisy_photo(), SIDE)
    assert quality.score(reference, reference) == pytest.approx(100.0)
    harsh = quality.score(reference, pipeline.encode_for_quality(reference, "jpeg", 10))
    fine = quality.score(reference, pipeline.encode_for_quality(reference, "jpeg", 95))
    assert harsh < fine < 100.0


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
def test_a_flat_product_shot_gets_a_lower_q_than_a_noisy_photo(fmt):
    flat = quality.calibrate(alone(flat_product()), fmt, target=70, floor=10,
                             ceiling=95)
    reference = quality.prepare(noisy_photo(), SIDE)
    noisy = quality.calibrate(quality.plain(reference), fmt, target=70, floor=10, ceiling=95)
    assert flat.q < noisy.q
    assert flat.score >= 70 and noisy.score >= 70
    # the chosen q is the lowest that reaches the target: one step lower does not
    below = quality.score(reference, pipeline.encode_for_quality(reference, fmt, noisy.q - 1))
    assert below < 70


def test_calibrate_respects_the_floor_and_the_ceiling():
    flat = quality.calibrate(alone(flat_product()), "webp", target=75, floor=60,
                             ceiling=90)
    assert flat.q == 60  # the flat shot would go lower: the floor holds it
    noisy = quality.calibrate(alone(noisy_photo()), "webp", target=99, floor=40,
                              ceiling=70)
    assert noisy.q == 70 and noisy.score < 99  # unreachable target: the ceiling, its real score


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        quality.calibrate(alone(flat_product()), "webp", target=75, floor=80,
                          ceiling=70)


# --- the delivered renders against the original -------------------------------------------


def woven(w: int = 1000, h: int = 700) -> bytes:
    """A thread-level weave under folds (JPEG q95): fine regular detail that a resize from a
    re-encoded master and a small encode both lose."""
    xy = pyvips.Image.xyz(w, h)
    x, y = xy[0], xy[1]
    weave = ((x * 1.9).sin() * (y * 1.7).sin() * 60 + 128)
    folds = (x / 90.0).sin() * 30
    image = (weave + folds).bandjoin([weave * 0.8 + 20, weave * 0.5 + folds + 60])
    return image.cast("uchar").copy(interpretation="srgb").jpegsave_buffer(Q=95)


def renders_from(master: bytes, size: tuple[int, int]) -> quality.Render:
    """The service's render (pipeline.render) from this master, planned on the original's
    size, as delivery does."""
    decoded = pipeline.decode_master(master)

    def render(opts: RenderOptions, fmt: str) -> bytes:
        return pipeline.render(decoded, opts, fmt, source_width=decoded.width,
                               source_height=decoded.height, plan_size=size).data

    return render


def test_views_are_the_delivered_sizes_against_the_original_at_that_size():
    original = woven()
    master = pipeline.make_master(original, 640)
    sizes = quality.views(original, renders_from(master.data, (1000, 700)), size=(1000, 700),
                          widths=(400, 200, 400))
    assert [v.width for v in sizes] == [200, 400]  # distinct, narrowest first
    assert [(v.reference.width, v.reference.height) for v in sizes] == [(200, 140), (400, 280)]
    # the candidate is the pipeline's own render at that q: same size, same bytes
    data = sizes[1].encode("webp", 61)
    assert data == pipeline.render(
        pipeline.decode_master(master.data), RenderOptions(width=400, quality=61), "webp",
        source_width=640, source_height=448, plan_size=(1000, 700)).data
    # the reference is the original resized, not the master: a perfect render would score 100
    assert quality.score(sizes[1].reference, quality.reference(original, (400, 280))) == (
        pytest.approx(100.0))
    # a source narrower than every width is one size, its own
    small = quality.views(original, renders_from(master.data, (1000, 700)), size=(1000, 700),
                          widths=(1200, 1600))
    assert [(v.reference.width, v.reference.height) for v in small] == [(1000, 700)]


def test_the_pipelines_own_loss_counts():
    # A master that already lost detail (320 px at JPEG q10 instead of 2048 at q92): the encoder
    # alone reaches the target at the floor, the delivered render cannot reach it at any q.
    original = woven()
    lossy_master = pyvips.Image.thumbnail_buffer(original, 320).jpegsave_buffer(Q=10)
    delivered = quality.views(original, renders_from(lossy_master, (1000, 700)),
                              size=(1000, 700), widths=(300,))
    encoder_only = quality.plain(delivered[0].reference)
    plain = quality.calibrate(encoder_only, "webp", target=70, floor=30, ceiling=95)
    real = quality.calibrate(delivered[0], "webp", target=70, floor=30, ceiling=95)
    assert plain.q == 30 and plain.score >= 70
    assert real.q == 95 and real.score < 70
    # a width at the ceiling gives the next width no hint: its own search from scratch
    both = quality.views(original, renders_from(lossy_master, (1000, 700)), size=(1000, 700),
                         widths=(300, 320))
    found = quality.calibrate_all(both, ["webp"], target=70, bounds={"webp": (30, 95)})
    alone = quality.calibrate(both[1], "webp", target=70, floor=30, ceiling=95)
    assert found[0].q == 95 and found[0].score < 70
    assert (found[1].q, found[1].encodes) == (alone.q, alone.encodes)


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_a_hint_finds_the_same_q_with_fewer_encodes(fmt):
    # Whatever the hint — right, a little off either way, far off, out of bounds — the search
    # lands on a q that reaches the target where one step lower does not; the score wiggles by
    # a point from one q to the next (this weave: WebP q24 scores 70.8, q25 69.6, q26 70.1), so
    # two paths may stop on either side of a wiggle, never further apart than that. Near the
    # answer a hint takes fewer encodes.
    view = quality.plain(quality.prepare(woven(SIDE, SIDE), SIDE))
    bounds = {"target": 70, "floor": 20, "ceiling": 95}
    plain = quality.calibrate(view, fmt, **bounds)
    assert 20 < plain.q < 95

    def scored(q: int) -> float:
        return quality.score(view.reference, view.encode(fmt, q))

    for hint in (plain.q, plain.q - 1, plain.q + 1, plain.q - 3, plain.q + 3, 20, 95, 5, 99):
        hinted = quality.calibrate(view, fmt, hint=hint, **bounds)
        assert abs(hinted.q - plain.q) <= 2, hint
        assert hinted.score == pytest.approx(scored(hinted.q), abs=0.01) and hinted.score >= 70
        assert scored(hinted.q - 1) < 70, hint
        if hinted.q == plain.q and abs(hint - plain.q) <= 1:
            assert hinted.encodes < plain.encodes, hint


def test_each_width_gets_its_own_q():
    original = woven()
    render = renders_from(pipeline.make_master(original, 1000).data, (1000, 700))
    both = quality.views(original, render, size=(1000, 700), widths=(200, 500))
    found = quality.calibrate_all(both, ["webp"], target=75, bounds={"webp": (20, 95)})
    each = [quality.calibrate(view, "webp", target=75, floor=20, ceiling=95) for view in both]
    # the same q each width's own search finds, keyed by the output width scored
    assert [(c.width, c.q, c.score) for c in found] == [(c.width, c.q, c.score) for c in each]
    assert [c.width for c in found] == [200, 500]
    assert all(c.score >= 75 for c in found)


def test_the_q_for_any_width_comes_from_the_calibrated_widths():
    table = {400: 62, 800: 70}
    assert quality.for_width(table, 400) == 62 and quality.for_width(table, 800) == 70
    assert quality.for_width(table, 600) == 70  # between: the higher of the two
    assert quality.for_width({400: 90, 800: 71}, 600) == 90
    assert quality.for_width(table, 200) == 62  # narrower than all: the narrowest's
    assert quality.for_width(table, 1600) == 70  # wider than all: the widest's
    assert quality.for_width({0: 55}, 1234) == 55  # VERSION 2: one q for every width
    assert quality.for_width({}, 400) is None


def test_calibrate_all_calibrates_only_bounded_formats_on_the_same_views():
    rgba = flat_product().bandjoin(255).copy(interpretation="srgb")
    data = rgba.pngsave_buffer()
    master = pipeline.make_master(data, SIDE)

    def render(opts: RenderOptions, fmt: str) -> bytes:
        return pipeline.render(master.data, opts, fmt, source_width=SIDE,
                               source_height=SIDE).data

    sizes = quality.views(data, render, size=(SIDE, SIDE), widths=(128,))
    found = quality.calibrate_all(sizes, ["webp", "png", "avif"], target=75,
                                  bounds={"webp": (50, 90), "avif": (35, 80)})
    assert [c.fmt for c in found] == ["webp", "avif"]
    assert all(c.encodes >= 1 and 35 <= c.q <= 90 and c.width == 128 for c in found)
