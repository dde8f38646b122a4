"""Calibrated quality (ecogram.imaging.quality): real pixels, real encoders, real SSIMULACRA2."""

from __future__ import annotations

import pytest
import pyvips

from ecogram.imaging import pipeline, quality

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


def test_identical_scores_100_and_a_harsh_encode_scores_lower():
    reference = quality.prepare(noisy_photo())
    assert quality.score(reference, reference) == pytest.approx(100.0)
    harsh = quality.score(reference, pipeline.encode_for_quality(reference, "jpeg", 10))
    fine = quality.score(reference, pipeline.encode_for_quality(reference, "jpeg", 95))
    assert harsh < fine < 100.0


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
def test_a_flat_product_shot_gets_a_lower_q_than_a_noisy_photo(fmt):
    flat = quality.calibrate(quality.prepare(flat_product()), fmt, target=70, floor=10,
                             ceiling=95)
    reference = quality.prepare(noisy_photo())
    noisy = quality.calibrate(reference, fmt, target=70, floor=10, ceiling=95)
    assert flat.q < noisy.q
    assert flat.score >= 70 and noisy.score >= 70
    # the chosen q is the lowest that reaches the target: one step lower does not
    below = quality.score(reference, pipeline.encode_for_quality(reference, fmt, noisy.q - 1))
    assert below < 70


def test_calibrate_respects_the_floor_and_the_ceiling():
    flat = quality.calibrate(quality.prepare(flat_product()), "webp", target=75, floor=60,
                             ceiling=90)
    assert flat.q == 60  # the flat shot would go lower: the floor holds it
    noisy = quality.calibrate(quality.prepare(noisy_photo()), "webp", target=99, floor=40,
                              ceiling=70)
    assert noisy.q == 70 and noisy.score < 99  # unreachable target: the ceiling, its real score


def test_calibrate_all_takes_encoded_bytes_with_alpha_and_only_bounded_formats():
    rgba = flat_product().bandjoin(255).copy(interpretation="srgb")
    data = rgba.pngsave_buffer()
    found = quality.calibrate_all(data, ["webp", "png", "avif"], target=75,
                                  bounds={"webp": (50, 90), "avif": (35, 80)})
    assert [c.fmt for c in found] == ["webp", "avif"]
    assert all(c.encodes >= 1 and 35 <= c.q <= 90 for c in found)


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        quality.calibrate(quality.prepare(flat_product()), "webp", target=75, floor=80,
                          ceiling=70)
