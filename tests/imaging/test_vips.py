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


def _pyvips_records(caplog) -> list:
    return [r for r in caplog.records if r.name == "pyvips"]


def test_libvips_chatter_is_debug_and_its_lines_are_json(caplog) -> None:
    import json
    import logging

    vips.configure()
    data = (IMAGES / "valid" / "hopper.jpg").read_bytes()
    with caplog.at_level(logging.INFO, logger="pyvips"):
        pyvips.Image.new_from_buffer(data, "").resize(0.37).jpegsave_buffer()
    assert _pyvips_records(caplog) == []  # nothing at the default level
    with caplog.at_level(logging.DEBUG, logger="pyvips"):
        pyvips.Image.new_from_buffer(data, "").resize(0.37).jpegsave_buffer()
    records = _pyvips_records(caplog)
    assert records, "libvips said nothing at debug: the test shows nothing"
    assert {r.levelno for r in records} == {logging.DEBUG}
    lines = [json.loads(r.getMessage()) for r in records]
    assert {line["event"] for line in lines} == {"libvips"}
    assert not any(line["message"].startswith("VIPS:") for line in lines)


def test_libvips_warnings_about_a_damaged_image_are_info(caplog) -> None:
    import json
    import logging

    vips.configure()
    data = (IMAGES / "valid" / "hopper.jpg").read_bytes()
    with caplog.at_level(logging.INFO, logger="pyvips"), pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(data[: len(data) // 2], "", fail=True).avg()
    records = _pyvips_records(caplog)
    assert records and {r.levelno for r in records} == {logging.INFO}
    assert all(json.loads(r.getMessage())["event"] == "libvips" for r in records)
