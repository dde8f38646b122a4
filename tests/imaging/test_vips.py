"""libvips set-up: idempotent, cache off, only accepted loaders."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from ecogram.imaging import vips

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"


def test_configure_is_idempotent_and_sets_threads() -> None:
    vips.configure(3)
    vips.configure(2)
    assert vips.is_configured()
    assert pyvips.concurrency_get() == 2
    assert pyvips.cache_get_max() == 0


@pytest.mark.parametrize(
    "data",
    [
        (IMAGES / "hostile" / "script.svg").read_bytes(),
        b"P5\n2 2\n255\n\x00\x00\x00\x00",  # PGM: a format libvips reads, we do not accept
    ],
)
def test_unaccepted_loaders_are_blocked(data: bytes) -> None:
    vips.configure()
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(data, "").avg()


def test_accepted_loaders_still_work() -> None:
    vips.configure()
    for name in ("hopper.jpg", "hopper.png", "hopper.webp", "hopper.avif", "hopper.tif",
                 "iss634.gif"):
        assert pyvips.Image.new_from_buffer((IMAGES / "valid" / name).read_bytes(), "").width
