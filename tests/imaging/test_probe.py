"""probe: every valid fixture is read right, every hostile one refused with the right error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pyvips

from ecogram.errors import AppError
from ecogram.imaging.pipeline import make_master
from ecogram.imaging.probe import Probe, QCLimits, inspect, probe, read_header, sniff
from ecogram.imaging.vips import configure

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
LIMITS = QCLimits(min_side=100, zoom_side=1000)
LOOSE = QCLimits(min_side=1, zoom_side=1)


@pytest.fixture(autouse=True, scope="module")
def _vips() -> None:
    configure()


def read(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


def codes(found: Probe) -> set[str]:
    return {f.code for f in found.findings}


# file -> (format, mime, displayed width, height, frames, has_alpha)
VALID = {
    "hopper.avif": ("avif", "image/avif", 128, 128, 1, False),
    "hopper.jpg": ("jpeg", "image/jpeg", 128, 128, 1, False),
    "hopper.png": ("png", "image/png", 128, 128, 1, False),
    "hopper.tif": ("tiff", "image/tiff", 128, 128, 1, False),
    "hopper.webp": ("webp", "image/webp", 128, 128, 1, False),
    "hopper_16bit_qtables.jpg": ("jpeg", "image/jpeg", 128, 128, 1, False),
    "hopper_gray.jpg": ("jpeg", "image/jpeg", 128, 128, 1, False),
    "hopper_orientation_6.jpg": ("jpeg", "image/jpeg", 128, 128, 1, False),
    "icc_profile_big.jpg": ("jpeg", "image/jpeg", 425, 250, 1, False),
    "iss634.gif": ("gif", "image/gif", 245, 245, 42, False),
    "pil123rgba.png": ("png", "image/png", 162, 150, 1, True),
    "pil_sample_cmyk.jpg": ("jpeg", "image/jpeg", 100, 100, 1, False),
    "transparency.avif": ("avif", "image/avif", 64, 64, 1, True),
    "xmp_test.jpg": ("jpeg", "image/jpeg", 2000, 1072, 1, False),
}


def test_every_valid_fixture_is_listed() -> None:
    assert {p.name for p in (IMAGES / "valid").iterdir()} == set(VALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_fixture(name: str) -> None:
    data = read(f"valid/{name}")
    fmt, mime, width, height, frames, has_alpha = VALID[name]
    found = probe(data, LOOSE)
    assert (found.format, found.mime, found.width, found.height) == (fmt, mime, width, height)
    assert (found.frames, found.has_alpha, found.file_size) == (frames, has_alpha, len(data))
    assert len(found.sha256) == 64
    assert -(2**63) <= found.phash < 2**63
    assert len(found.blurhash) == 28  # 4x3 components
    assert found.color.startswith("#") and len(found.color) == 7
    json.dumps(found.qc)  # JSON-able as stored


def test_orientation_6_reports_the_upright_size() -> None:
    data = read("valid/hopper_orientation_6.jpg")
    found = probe(data, LIMITS)
    assert found.orientation == 6
    assert "exif_orientation" in codes(found)
    # The same file made asymmetric: stored 200x100, displayed 100x200.
    stored = pyvips.Image.black(200, 100, bands=3).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", 6)
    found = probe(stored.jpegsave_buffer(), LOOSE)
    assert (found.width, found.height, found.orientation) == (100, 200, 6)


def test_findings() -> None:
    assert codes(probe(read("valid/hopper.jpg"), LIMITS)) == {
        "low_resolution", "background_not_white"
    }
    assert {"cmyk", "no_icc_profile"} <= codes(probe(read("valid/pil_sample_cmyk.jpg"), LIMITS))
    assert "animated" in codes(probe(read("valid/iss634.gif"), LIMITS))
    assert "not_square" in codes(probe(read("valid/xmp_test.jpg"), LIMITS))
    assert "low_resolution" not in codes(probe(read("valid/xmp_test.jpg"), LIMITS))
    # An untagged sRGB file is not nagged about a missing profile.
    assert "no_icc_profile" not in codes(probe(read("valid/hopper.png"), LIMITS))
    # EXIF ColorSpace 65535 is written by most tools whatever the pixels: not a reason either.
    assert "no_icc_profile" not in codes(probe(read("valid/hopper_orientation_6.jpg"), LIMITS))
    # Transparent edges are not a coloured background.
    assert "background_not_white" not in codes(probe(read("valid/pil123rgba.png"), LIMITS))
    qc = probe(read("valid/hopper.jpg"), LIMITS).qc
    assert {"code", "message"} == set(qc["warnings"][0])


def test_white_background_passes() -> None:
    white = pyvips.Image.black(600, 600, bands=3).new_from_image([255, 255, 255])
    shot = white.draw_rect([200, 30, 30], 150, 150, 300, 300, fill=True)
    found = probe(shot.jpegsave_buffer(Q=90), LIMITS)
    assert "background_not_white" not in codes(found)
    assert "not_square" not in codes(found)
    assert "low_resolution" in codes(found)


# file -> (status, code)
HOSTILE = {
    "broken.png": (422, "damaged_image"),
    "decompression_bomb.gif": (413, "too_many_pixels"),
    "hopper_rle8_row_overflow.bmp": (415, "unsupported_type"),
    "html-as-png.png": (415, "unsupported_type"),
    "not-an-image.jpg": (415, "unsupported_type"),
    "pixel-bomb-400mp.png": (413, "too_many_pixels"),
    "script.svg": (415, "unsupported_type"),
    "too-small-40x30.jpg": (422, "too_small"),
    "truncated_jpeg.jpg": (422, "damaged_image"),
}


def test_every_hostile_image_is_listed() -> None:
    names = {p.name for p in (IMAGES / "hostile").iterdir() if p.suffix != ".zip"}
    assert names == set(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_fixture_is_refused(name: str) -> None:
    status, code = HOSTILE[name]
    with pytest.raises(AppError) as caught:
        # Default limits for the size rule; otherwise let every other check have its say.
        probe(read(f"hostile/{name}"), QCLimits() if code == "too_small" else LOOSE)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert "vips" not in caught.value.message.lower()
    json.dumps(caught.value.as_dict())


@pytest.mark.parametrize("name", ["decompression_bomb.gif", "pixel-bomb-400mp.png"])
def test_bombs_are_refused_from_the_header(name: str) -> None:
    data = read(f"hostile/{name}")
    # The cheap header stage alone refuses them: no pixel is decoded (a full decode of
    # 400 megapixels would take seconds and gigabytes).
    with pytest.raises(AppError) as at_header:
        read_header(data, QCLimits())
    with pytest.raises(AppError) as caught:
        probe(data, QCLimits())
    assert (caught.value.status, caught.value.code) == (at_header.value.status, "too_many_pixels")
    assert caught.value.details["max_pixels"] == QCLimits().max_pixels


def test_too_small_message_names_the_size() -> None:
    with pytest.raises(AppError) as caught:
        probe(read("hostile/too-small-40x30.jpg"), QCLimits(min_side=500))
    assert "40x30" in caught.value.message and "500" in caught.value.message


def test_file_too_large() -> None:
    with pytest.raises(AppError) as caught:
        probe(read("valid/hopper.jpg"), QCLimits(max_bytes=1000, min_side=1))
    assert (caught.value.status, caught.value.code) == (413, "file_too_large")


def test_too_many_frames() -> None:
    with pytest.raises(AppError) as caught:
        probe(read("valid/iss634.gif"), QCLimits(max_frames=10, min_side=1))
    assert (caught.value.status, caught.value.code) == (413, "too_many_frames")


def test_pixel_limit_from_libvips_header() -> None:
    with pytest.raises(AppError) as caught:
        probe(read("valid/xmp_test.jpg"), QCLimits(max_pixels=1_000_000, min_side=1))
    assert (caught.value.status, caught.value.code) == (413, "too_many_pixels")


def test_truncated_and_corrupted_files_are_damaged() -> None:
    data = read("valid/xmp_test.jpg")
    for broken in (data[: len(data) // 2], data[:20_000], read("valid/hopper.png")[:2000]):
        with pytest.raises(AppError) as caught:
            probe(broken, LOOSE)
        assert (caught.value.status, caught.value.code) == (422, "damaged_image")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a", "gif"),
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif"),
        (b"BM", None),
        (b"<svg", None),
        (b"%PDF-1.4", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind


def test_inspect_matches_probe_and_make_master() -> None:
    data = read("valid/xmp_test.jpg")
    found, master = inspect(data, LIMITS, 1000)
    assert found == probe(data, LIMITS)
    separate = make_master(data, 1000)
    assert (master.format, master.width, master.height) == ("jpeg", 1000, 536)
    assert (separate.format, separate.width, separate.height) == ("jpeg", 1000, 536)


# --- damage: every kind a transfer or a disk can do, per format --------------------------------
# Made from the valid fixtures, so each case says exactly what was done to a known-good file.


def _flip(data: bytes, at: float, count: int = 64) -> bytes:
    """``count`` bytes inverted from ``at`` (a fraction of the length) on."""
    broken = bytearray(data)
    start = int(len(data) * at)
    for i in range(start, start + count):
        broken[i] ^= 0xFF
    return bytes(broken)


def _jpeg_claiming_rows(data: bytes, rows: int) -> bytes:
    """The JPEG with its frame header (SOF) saying ``rows`` rows; the scan data is unchanged."""
    pos = 2
    while data[pos] == 0xFF:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:pos + 5] + rows.to_bytes(2, "big") + data[pos + 7:]
        pos += 2 + length
    raise AssertionError("no frame header")


def _gif_cut(data: bytes, at: float, tail: bytes = b"") -> bytes:
    return data[: int(len(data) * at)] + tail


def _damaged_cases() -> dict[str, bytes]:
    photo = read("valid/xmp_test.jpg")  # a real camera photo, 2000x1072
    small = read("valid/hopper.jpg")
    gif = read("valid/iss634.gif")  # 42 frames: a cut after the first frame leaves it whole
    lzw_tiff = pyvips.Image.new_from_buffer(read("valid/hopper.tif"), "").tiffsave_buffer(
        compression="lzw"
    )
    return {
        # The three of the issue: cut short with an end marker (EOI) appended, flipped bytes,
        # and a header that claims a size the data does not have.
        "jpeg cut short, end marker appended": photo[: len(photo) // 2] + b"\xff\xd9",
        "small jpeg cut short, end marker appended": small[: len(small) // 2] + b"\xff\xd9",
        "jpeg with flipped bytes": _flip(photo, 0.5),
        "small jpeg with flipped bytes": _flip(small, 0.6),
        "jpeg claiming more rows than it has": _jpeg_claiming_rows(small, 400),
        "big jpeg claiming more rows than it has": _jpeg_claiming_rows(photo, 3000),
        "jpeg cut short": photo[:20_000],
        "png cut short": read("valid/hopper.png")[:20_000],
        "png with flipped bytes": _flip(read("valid/hopper.png"), 0.5),
        "webp cut short": read("valid/hopper.webp")[:2000],
        "avif cut short": read("valid/hopper.avif")[:2500],
        "avif with flipped bytes": _flip(read("valid/hopper.avif"), 0.5),
        "tiff cut short": read("valid/hopper.tif")[:30_000],
        "lzw tiff with flipped bytes": _flip(lzw_tiff, 0.5),
        "animated gif cut short": _gif_cut(gif, 0.5),
        "animated gif cut short, trailer appended": _gif_cut(gif, 0.5, b";"),
        "animated gif with flipped bytes": _flip(gif, 0.5),
        "still gif cut short": _gif_cut(read("valid/iss634.gif"), 0.02),
    }


DAMAGED = _damaged_cases()


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_file_is_refused(name: str) -> None:
    with pytest.raises(AppError) as caught:
        probe(DAMAGED[name], LOOSE)
    assert (caught.value.status, caught.value.code) == (422, "damaged_image")
    assert caught.value.message == (
        "The file is damaged or incomplete and cannot be read as an image."
    )
    assert "vips" not in json.dumps(caught.value.as_dict()).lower()


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_file_is_refused_by_the_import_path_too(name: str) -> None:
    with pytest.raises(AppError) as caught:
        inspect(DAMAGED[name], LOOSE, 1000)
    assert (caught.value.status, caught.value.code) == (422, "damaged_image")


def test_undetectable_damage_is_a_known_limit() -> None:
    """What no decoder can see: bytes flipped in uncompressed TIFF pixels, or inside a lossy
    WebP's VP8 stream (no checksums in either). They decode to other pixels; this test pins the
    limit down so a change in it is noticed, not to bless it."""
    for data in (_flip(read("valid/hopper.tif"), 0.5), _flip(read("valid/hopper.webp"), 0.5)):
        assert probe(data, LOOSE).width == 128


@pytest.mark.parametrize("name", sorted(VALID))
def test_strict_decoding_still_imports_every_valid_fixture(name: str) -> None:
    found, master = inspect(read(f"valid/{name}"), LOOSE, 1000)
    assert (found.width, found.height) == VALID[name][2:4]
    assert master.width > 0
