"""Fingerprints: sha256, pHash distances, the signed int64 form, blurhash and colour."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from ecogram.imaging import hashes
from ecogram.imaging.probe import QCLimits, probe
from ecogram.imaging.vips import configure

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
LOOSE = QCLimits(min_side=1, zoom_side=1)


@pytest.fixture(autouse=True, scope="module")
def _vips() -> None:
    configure()


def read(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


def phash_of(data: bytes) -> int:
    return probe(data, LOOSE).phash


def resized(data: bytes, width: int, fmt: str = ".jpg[Q=70]") -> bytes:
    return pyvips.Image.thumbnail_buffer(data, width).write_to_buffer(fmt)


def test_sha256() -> None:
    assert hashes.sha256(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("name", ["valid/xmp_test.jpg", "valid/hopper.png",
                                  "valid/icc_profile_big.jpg"])
def test_same_picture_resized_or_reencoded_is_close(name: str) -> None:
    data = read(name)
    original = phash_of(data)
    for other in (resized(data, 96), resized(data, 300, ".png"), resized(data, 200, ".webp")):
        assert hashes.hamming_distance(original, phash_of(other)) <= 6


def test_same_picture_in_other_formats_is_close() -> None:
    base = phash_of(read("valid/hopper.png"))
    for name in ("hopper.jpg", "hopper.webp", "hopper.avif", "hopper.tif", "hopper_gray.jpg"):
        assert hashes.hamming_distance(base, phash_of(read(f"valid/{name}"))) <= 6


def test_different_pictures_are_far() -> None:
    names = ["hopper.png", "xmp_test.jpg", "pil_sample_cmyk.jpg", "icc_profile_big.jpg",
             "pil123rgba.png", "iss634.gif"]
    values = [phash_of(read(f"valid/{name}")) for name in names]
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            assert hashes.hamming_distance(a, b) >= 16


def test_mirror_image_is_far() -> None:
    data = read("valid/xmp_test.jpg")
    mirrored = pyvips.Image.new_from_buffer(data, "").fliphor().jpegsave_buffer()
    assert hashes.hamming_distance(phash_of(data), phash_of(mirrored)) >= 16


@given(st.integers(0, 2**64 - 1))
def test_signed_form_fits_bigint_and_keeps_distances(value: int) -> None:
    signed = hashes.to_signed64(value)
    assert -(2**63) <= signed < 2**63
    assert hashes.hamming_distance(signed, value) == 0
    assert hashes.to_signed64(signed) == signed


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_hamming_distance(a: int, b: int) -> None:
    d = hashes.hamming_distance(a, b)
    assert 0 <= d <= 64
    assert d == hashes.hamming_distance(b, a)
    assert hashes.hamming_distance(a, a) == 0
    assert hashes.hamming_distance(a, ~a) == 64


def test_blurhash_and_colour_of_a_flat_image() -> None:
    flat = pyvips.Image.black(40, 30, bands=3).new_from_image([200, 100, 50]).cast("uchar")
    assert hashes.average_color(flat) == "#c86432"
    blur = hashes.blurhash_of(flat)
    assert len(blur) == 28
    assert blur == hashes.blurhash_of(flat.resize(2))  # size does not change the hash much
