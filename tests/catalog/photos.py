"""Small generated product photos for import tests: distinct pictures, or near-copies of one."""

from __future__ import annotations

import io
import random
import zipfile

import pyvips


def make_photo(seed: int, width: int = 240, height: int = 240, quality: int = 90,
               fmt: str = ".jpg") -> bytes:
    """A white canvas with a few coloured blocks placed by ``seed``.

    Different seeds give different layouts (far apart in perceptual hash); the same seed at
    another quality gives different bytes of (perceptually) the same picture.
    """
    rnd = random.Random(seed)
    image = pyvips.Image.black(width, height, bands=3).new_from_image([255, 255, 255])
    image = image.cast("uchar").copy_memory()
    for _ in range(4):
        w, h = rnd.randrange(width // 6, width // 2), rnd.randrange(height // 6, height // 2)
        x, y = rnd.randrange(0, width - w), rnd.randrange(0, height - h)
        image = image.draw_rect([rnd.randrange(0, 200) for _ in range(3)], x, y, w, h,
                                fill=True)
    if fmt == ".png":
        return image.pngsave_buffer()
    return image.jpegsave_buffer(Q=quality)


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
