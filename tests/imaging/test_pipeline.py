"""render and make_master on real pixels: upright, sRGB, alpha, fits, formats, no metadata.

Images are compared by size and by the colour of regions, never byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from ecogram.errors import AppError
from ecogram.imaging.options import RenderOptions, parse_options
from ecogram.imaging.pipeline import decode_master, make_master, plan, render, source_nbytes
from ecogram.imaging.probe import QCLimits, probe, sniff
from ecogram.imaging.vips import configure

IMAGES = Path(__file__).parents[1] / "fixtures" / "images"
RED, GREEN, BLUE = [230, 20, 20], [20, 200, 20], [20, 20, 230]


@pytest.fixture(autouse=True, scope="module")
def _vips() -> None:
    configure()


def read(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "").copy_memory()


def patch_mean(image: pyvips.Image, left: int, top: int, size: int = 6) -> list[float]:
    area = image.crop(left, top, size, size)
    return [area.extract_band(b).avg() for b in range(3)]


def close(actual: list[float], expected: list[int], tolerance: float = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def upright_test_image() -> pyvips.Image:
    """60x40, blue, a red block top-left and a green block top-right."""
    image = pyvips.Image.black(60, 40, bands=3).new_from_image(BLUE).copy(interpretation="srgb")
    image = image.draw_rect(RED, 0, 0, 16, 16, fill=True)
    return image.draw_rect(GREEN, 44, 0, 16, 16, fill=True)


# How the camera stores the upright picture for each EXIF orientation (the inverse of what
# the viewer must do): 2 mirrored, 3 turned half, 4 flipped, 5 transposed, 6 turned a quarter
# anticlockwise, 7 transversed, 8 turned a quarter clockwise.
STORED = {
    1: lambda im: im,
    2: lambda im: im.fliphor(),
    3: lambda im: im.rot180(),
    4: lambda im: im.flipver(),
    5: lambda im: im.rot90().fliphor(),
    6: lambda im: im.rot270(),
    7: lambda im: im.rot270().fliphor(),
    8: lambda im: im.rot90(),
}


def jpeg_with_orientation(orientation: int) -> bytes:
    stored = STORED[orientation](upright_test_image()).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return stored.jpegsave_buffer(Q=95, subsample_mode="off")


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_every_orientation_is_served_upright(orientation: int, fmt: str) -> None:
    data = jpeg_with_orientation(orientation)
    found = probe(data, QCLimits(min_side=1, zoom_side=1))
    assert (found.width, found.height, found.orientation) == (60, 40, orientation)
    out = render(data, RenderOptions(), fmt, source_width=60, source_height=40)
    assert (out.width, out.height) == (60, 40)
    image = decode(out.data)
    assert (image.width, image.height) == (60, 40)
    assert close(patch_mean(image, 4, 4), RED)
    assert close(patch_mean(image, 50, 4), GREEN)
    assert close(patch_mean(image, 4, 30), BLUE)
    # The output carries no orientation tag to be applied twice.
    assert image.get_typeof("orientation") == 0 or image.get("orientation") == 1


def test_orientation_with_resize() -> None:
    out = render(jpeg_with_orientation(6), RenderOptions(30), "jpeg", source_width=60,
                 source_height=40)
    assert (out.width, out.height) == (30, 20)
    assert close(patch_mean(decode(out.data), 2, 2, 4), RED)


def test_cmyk_is_converted_to_srgb_with_plausible_colours() -> None:
    data = read("valid/pil_sample_cmyk.jpg")
    source = pyvips.Image.new_from_buffer(data, "")
    assert source.interpretation == "cmyk"
    reference = source.icc_transform("srgb", input_profile="cmyk")
    out = render(data, RenderOptions(), "png", source_width=100, source_height=100)
    image = decode(out.data)
    assert image.interpretation == "srgb" and image.bands == 3
    for band in range(3):
        assert abs(image.extract_band(band).avg() - reference.extract_band(band).avg()) < 8
    # Inverted CMYK (the classic bug) would come out light; this sample is dark.
    assert image.avg() < 128


def test_embedded_profile_is_applied() -> None:
    """A P3-tagged file must come out as the sRGB colour it represents, profile stripped."""
    srgb = pyvips.Image.black(64, 64, bands=3).new_from_image([200, 30, 40])
    p3 = srgb.copy(interpretation="srgb").icc_transform("p3", input_profile="srgb")
    data = p3.jpegsave_buffer(Q=100, subsample_mode="off")
    out = decode(render(data, RenderOptions(32), "png", source_width=64,
                        source_height=64).data)
    assert close(patch_mean(out, 10, 10), [200, 30, 40], tolerance=6)
    assert out.get_typeof("icc-profile-data") == 0


@pytest.mark.parametrize("fmt", ["webp", "avif", "png"])
def test_alpha_is_kept_where_the_format_has_it(fmt: str) -> None:
    data = read("valid/pil123rgba.png")
    out = render(data, RenderOptions(81), fmt, source_width=162, source_height=150)
    image = decode(out.data)
    assert image.hasalpha()
    alpha = image.extract_band(image.bands - 1)
    assert alpha.min() < 50 and alpha.max() > 200


def test_alpha_is_flattened_on_bg_for_jpeg() -> None:
    data = read("valid/pil123rgba.png")
    source = pyvips.Image.new_from_buffer(data, "")
    transparent = source.extract_band(3) == 0
    opts = parse_options({"bg": "00ff00"})
    image = decode(render(data, opts, "jpeg", source_width=162, source_height=150).data)
    assert image.bands == 3
    # Where the source was fully transparent, the output is the background colour.
    green = (image.extract_band(1) > 200) & (image.extract_band(0) < 60)
    assert (transparent & green).avg() / max(1, transparent.avg()) > 0.9


@pytest.mark.parametrize(
    "query",
    [
        {"w": "400"},
        {"h": "150"},
        {"w": "300", "h": "300"},
        {"w": "300", "h": "300", "fit": "cover"},
        {"w": "300", "h": "100", "fit": "cover", "g": "north"},
        {"w": "100", "h": "300", "fit": "cover", "g": "east"},
        {"w": "300", "h": "300", "fit": "cover", "g": "attention"},
        {"w": "300", "h": "300", "fit": "cover", "g": "entropy"},
        {"w": "300", "h": "300", "fit": "contain", "bg": "000"},
        {"w": "300", "h": "100", "fit": "fill"},
        {"w": "200", "dpr": "2.5"},
        {"w": "5000"},
        {"w": "5000", "h": "5000", "fit": "cover"},
    ],
)
def test_render_sizes_match_the_plan(query: dict[str, str]) -> None:
    data = read("valid/xmp_test.jpg")
    opts = parse_options(query)
    expected = plan(opts, 2000, 1072).out
    out = render(data, opts, "webp", source_width=2000, source_height=1072)
    assert (out.width, out.height) == expected
    image = decode(out.data)
    assert (image.width, image.height) == expected
    assert out.content_type == "image/webp"


def test_contain_letterboxes_on_bg() -> None:
    data = read("valid/xmp_test.jpg")
    out = render(data, parse_options({"w": "200", "h": "200", "fit": "contain", "bg": "f00"}),
                 "jpeg", source_width=2000, source_height=1072)
    image = decode(out.data)
    assert (image.width, image.height) == (200, 200)
    assert close(patch_mean(image, 100, 2, 4), [255, 0, 0])  # top bar
    assert close(patch_mean(image, 100, 195, 4), [255, 0, 0])  # bottom bar


def test_contain_keeps_alpha_bars_transparent() -> None:
    data = read("valid/pil123rgba.png")
    out = render(data, parse_options({"w": "100", "h": "200", "fit": "contain"}), "png",
                 source_width=162, source_height=150)
    image = decode(out.data)
    assert (image.width, image.height, image.bands) == (100, 200, 4)
    assert image.extract_band(3).crop(0, 0, 100, 10).max() == 0


def test_cover_gravity_picks_the_side() -> None:
    # 60x40 test image, red top-left, green top-right: a 20x40 crop by gravity.
    data = upright_test_image().pngsave_buffer()
    west = decode(render(data, parse_options({"w": "20", "h": "40", "fit": "cover", "g": "west"}),
                         "png", source_width=60, source_height=40).data)
    east = decode(render(data, parse_options({"w": "20", "h": "40", "fit": "cover", "g": "east"}),
                         "png", source_width=60, source_height=40).data)
    assert close(patch_mean(west, 2, 2), RED, 10)
    assert close(patch_mean(east, 12, 2), GREEN, 10)


@pytest.mark.parametrize(
    ("fmt", "magic", "content_type"),
    [
        ("jpeg", "jpeg", "image/jpeg"),
        ("png", "png", "image/png"),
        ("webp", "webp", "image/webp"),
        ("avif", "avif", "image/avif"),
    ],
)
def test_formats_and_no_metadata(fmt: str, magic: str, content_type: str) -> None:
    data = read("valid/xmp_test.jpg")  # EXIF, XMP and an ICC profile
    out = render(data, RenderOptions(200), fmt, source_width=2000, source_height=1072)
    assert sniff(out.data) == magic
    assert out.content_type == content_type
    image = pyvips.Image.new_from_buffer(out.data, "")
    fields = set(image.get_fields())
    assert not {"exif-data", "xmp-data", "icc-profile-data", "iptc-data"} & fields
    assert b"http://ns.adobe.com/xap" not in out.data


def test_quality_changes_the_size() -> None:
    data = read("valid/xmp_test.jpg")
    small = render(data, parse_options({"w": "400", "q": "20"}), "jpeg", source_width=2000,
                   source_height=1072)
    big = render(data, parse_options({"w": "400", "q": "95"}), "jpeg", source_width=2000,
                 source_height=1072)
    assert len(small.data) < len(big.data)


def test_animated_gif_renders_its_first_frame() -> None:
    out = render(read("valid/iss634.gif"), RenderOptions(100), "webp", source_width=245,
                 source_height=245)
    image = pyvips.Image.new_from_buffer(out.data, "")
    assert (out.width, out.height) == (100, 100)
    assert image.get_typeof("n-pages") == 0 or image.get("n-pages") == 1


def test_oversized_canvas_is_refused() -> None:
    opts = parse_options({"w": "10000", "h": "10000", "dpr": "4", "fit": "contain"})
    with pytest.raises(AppError) as caught:
        render(read("valid/hopper.jpg"), opts, "webp", source_width=128, source_height=128)
    assert (caught.value.status, caught.value.code) == (400, "invalid_parameter")


def test_master_is_upright_srgb_bounded_and_stripped() -> None:
    master = make_master(jpeg_with_orientation(6), 30)
    assert (master.format, master.width, master.height) == ("jpeg", 30, 20)
    image = decode(master.data)
    assert close(patch_mean(image, 1, 1, 4), RED)
    assert image.get_typeof("exif-data") == 0

    master = make_master(read("valid/pil_sample_cmyk.jpg"), 2048)  # never enlarged
    assert (master.width, master.height) == (100, 100)
    assert decode(master.data).interpretation == "srgb"

    master = make_master(read("valid/xmp_test.jpg"), 2048)
    image = pyvips.Image.new_from_buffer(master.data, "")
    assert (master.width, master.height) == (2000, 1072)
    assert not {"exif-data", "xmp-data", "icc-profile-data"} & set(image.get_fields())


def test_master_keeps_alpha_only_when_used() -> None:
    master = make_master(read("valid/pil123rgba.png"), 2048)
    assert master.format == "webp"
    assert decode(master.data).hasalpha()
    # GIFs always load with an alpha band; an opaque one becomes a JPEG master.
    opaque = pyvips.Image.black(50, 50, bands=3).new_from_image(RED).bandjoin(255)
    master = make_master(opaque.copy(interpretation="srgb").pngsave_buffer(), 2048)
    assert master.format == "jpeg"
    animated = make_master(read("valid/iss634.gif"), 2048)
    assert (animated.width, animated.height) == (245, 245)


def test_render_from_master_matches_render_from_original() -> None:
    data = read("valid/xmp_test.jpg")
    master = make_master(data, 1000)
    opts = RenderOptions(400)
    from_master = decode(render(master.data, opts, "png", source_width=master.width,
                                source_height=master.height).data)
    from_original = decode(render(data, opts, "png", source_width=2000,
                                  source_height=1072).data)
    assert (from_master.width, from_master.height) == (from_original.width,
                                                        from_original.height)
    assert abs(from_master.avg() - from_original.avg()) < 2


def test_libvips_failures_never_escape_raw() -> None:
    with pytest.raises(AppError) as caught:
        render(b"\xff\xd8\xffgarbage", RenderOptions(10), "webp", source_width=10,
               source_height=10)
    assert (caught.value.status, caught.value.code) == (500, "render_failed")
    with pytest.raises(AppError) as caught:
        make_master(b"\x89PNG\r\n\x1a\ngarbage", 100)
    assert (caught.value.status, caught.value.code) == (422, "damaged_image")


def test_wrong_source_size_does_not_stretch() -> None:
    # The stored size of an orientation-6 file passed by mistake: the header wins.
    out = render(jpeg_with_orientation(6), RenderOptions(30), "png", source_width=40,
                 source_height=60)
    assert (out.width, out.height) == (30, 20)


def test_master_renders_plan_on_the_original_size() -> None:
    # 3000x2000 makes a 2048x1365 master (1365.33 rounded): planned on the master, 1144 wide
    # would be 762 high; the original gives 763, and so must a render from the master.
    original = pyvips.Image.black(3000, 2000, bands=3).copy(interpretation="srgb")
    master = make_master(original.jpegsave_buffer(), 2048)
    assert (master.width, master.height) == (2048, 1365)
    opts = RenderOptions(1144)
    expected = plan(opts, 3000, 2000).out
    assert expected == (1144, 763)
    for source in (master.data, decode_master(master.data)):
        out = render(source, opts, "webp", source_width=master.width,
                     source_height=master.height, plan_size=(3000, 2000))
        assert (out.width, out.height) == expected


def test_a_decoded_master_renders_like_its_bytes() -> None:
    master = make_master(read("valid/xmp_test.jpg"), 1000)
    decoded = decode_master(master.data)
    assert decoded.width == master.width
    for opts in (RenderOptions(400), RenderOptions(300, 300, fit="cover"),
                 RenderOptions(300, 200, fit="contain")):
        from_bytes = render(master.data, opts, "png", source_width=master.width,
                            source_height=master.height)
        from_memory = render(decoded, opts, "png", source_width=master.width,
                             source_height=master.height)
        a, b = decode(from_bytes.data), decode(from_memory.data)
        assert (a.width, a.height) == (b.width, b.height)
        assert abs(a.avg() - b.avg()) < 2


def test_a_decoded_master_is_a_pyramid_and_small_sizes_use_a_small_level() -> None:
    original = pyvips.Image.black(3000, 2000, bands=3).copy(interpretation="srgb")
    decoded = decode_master(make_master(original.jpegsave_buffer(), 2048).data)
    sizes = [(level.width, level.height) for level in decoded.levels]
    assert sizes == [(2048, 1365), (1024, 683), (512, 342)]
    assert source_nbytes(decoded) == sum(w * h * 3 for w, h in sizes)
    assert decoded.level_for(600, 400).width == 1024
    assert decoded.level_for(512, 300).width == 512
    assert decoded.level_for(1500, 900).width == 2048
    assert decoded.level_for(4000, 4000).width == 2048  # never smaller than asked for
