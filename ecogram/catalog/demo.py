"""``ecogram demo``: a small generated catalogue, imported through the real pipeline.

The photos are drawn with libvips (coloured product shapes on white, with a caption), so nothing
is downloaded; they are deterministic, so running the demo twice reports duplicates instead of
piling up copies. One file is deliberately broken, to show what a refusal looks like, and the
beach ball's last two photos are mirror images of a symmetric shape, so the second is flagged as
a near-duplicate: a warning to review.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import asyncpg
import pyvips

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.auth.passwords import hash_password
from ecogram.catalog import accounts
from ecogram.catalog.imports import ImportRun, Progress
from ecogram.catalog.sources import ImportItem
from ecogram.imaging import vips

DEMO_EMAIL = accounts.DEMO_EMAIL  # never counts as an admin (see accounts.register)
DEMO_NAME = "Demo"
WHITE = [255, 255, 255]


@dataclass(frozen=True)
class DemoPhoto:
    filename: str
    product: str
    data: bytes


Shape = Callable[[pyvips.Image, int, list[int]], pyvips.Image]


def _mug(image: pyvips.Image, side: int, colour: list[int]) -> pyvips.Image:
    body = side // 3
    x, y = side // 2 - body // 2 - side // 12, side // 3
    image = image.draw_rect(colour, x, y, body, body, fill=True)
    # The handle: a ring drawn as a filled circle with a white middle.
    image = image.draw_circle(colour, x + body, y + body // 2, body // 4, fill=True)
    return image.draw_circle(WHITE, x + body, y + body // 2, body // 8, fill=True)


def _shirt(image: pyvips.Image, side: int, colour: list[int]) -> pyvips.Image:
    w = side // 3
    x, y = side // 2 - w // 2, side // 4
    image = image.draw_rect(colour, x, y, w, side // 2, fill=True)
    image = image.draw_rect(colour, x - w // 2, y, w // 2, w // 2, fill=True)  # sleeves
    image = image.draw_rect(colour, x + w, y, w // 2, w // 2, fill=True)
    return image.draw_circle(WHITE, side // 2, y, w // 6, fill=True)  # the neck


def _lamp(image: pyvips.Image, side: int, colour: list[int]) -> pyvips.Image:
    c = side // 2
    image = image.draw_rect([60, 60, 60], c - side // 6, side * 3 // 4, side // 3, side // 30,
                            fill=True)  # foot
    image = image.draw_rect([60, 60, 60], c - side // 80, side // 3, side // 40, side * 5 // 12,
                            fill=True)  # stem
    return image.draw_circle(colour, c, side // 3, side // 7, fill=True)  # shade


def _ball(image: pyvips.Image, side: int, colour: list[int]) -> pyvips.Image:
    c, r = side // 2, side // 4
    image = image.draw_circle(colour, c, c, r, fill=True)
    return image.draw_rect(WHITE, c - r, c - r // 8, 2 * r, r // 4, fill=True)  # a stripe


PRODUCTS: list[tuple[str, str, Shape, list[list[int]]]] = [
    ("MUG-001", "Ceramic mug", _mug, [[30, 90, 200], [200, 40, 40], [40, 150, 80]]),
    ("TEE-002", "Cotton T-shirt", _shirt, [[230, 180, 20], [20, 20, 20]]),
    ("LAMP-003", "Desk lamp", _lamp, [[240, 120, 30], [90, 60, 160]]),
    ("BALL-004", "Beach ball", _ball, [[220, 30, 120], [0, 170, 200], [120, 200, 40]]),
]

PHOTO_COUNT = sum(len(colours) for *_, colours in PRODUCTS) + 1  # and the broken one


def _photo(code: str, product: str, shape: Shape, colour: list[int], side: int,
           view: int = 0) -> bytes:
    image = pyvips.Image.black(side, side, bands=3).new_from_image(WHITE).cast("uchar")
    image = shape(image.copy_memory(), side, colour)
    if view:
        # Another "view" of the product: the shape moved and mirrored, so the photos of one
        # product differ as real shots do (and are not near-duplicates of each other).
        shift = side // 6 * (1 if view % 2 else -1)
        image = image.embed(shift, -shift // 2, side, side, background=WHITE)
        image = image.fliphor() if view % 2 else image.flipver()
    caption = pyvips.Image.text(f"{product}  {code}", dpi=max(72, side // 4), font="sans")
    ink = caption.new_from_image([90, 90, 90]).bandjoin(caption).copy(interpretation="srgb")
    x = max(0, (side - caption.width) // 2)
    image = image.composite2(ink, "over", x=x, y=side - caption.height - side // 16)
    return image.flatten(background=WHITE).cast("uchar").jpegsave_buffer(Q=85, keep="none")


def generate_catalogue(side: int = 1200) -> list[DemoPhoto]:
    """The demo photos: a few products with two or three photos each, and one broken file.

    ``side`` should be at least ECOGRAM_MIN_SIDE (and ECOGRAM_ZOOM_SIDE for no warning).
    """
    photos = []
    for code, product, shape, colours in PRODUCTS:
        for n, colour in enumerate(colours, 1):
            photos.append(DemoPhoto(f"{code}_{n}.jpg", product,
                                    _photo(code, product, shape, colour, side, n - 1)))
    # A photo cut off in transfer: the import refuses it as damaged.
    whole = _photo("SOCK-005", "Wool socks", _ball, [120, 120, 120], side)
    photos.append(DemoPhoto("SOCK-005_1.jpg", "Wool socks", whole[: len(whole) // 3]))
    return photos


async def ensure_demo_user(conn: asyncpg.Connection) -> Identity:
    """The "Demo" importer named on the demo records; nobody knows its password."""
    row = await db.queries.import_find_user(conn, email=DEMO_EMAIL)
    if row is None:
        row = await db.queries.import_create_user(
            conn, email=DEMO_EMAIL, name=DEMO_NAME,
            password_hash=await hash_password(secrets.token_urlsafe(32)), role="importer",
        )
        if row is None:  # created meanwhile by another `ecogram demo`
            row = await db.queries.import_find_user(conn, email=DEMO_EMAIL)
    assert row is not None
    return Identity(row["id"], row["email"], row["name"], row["role"])


async def run_demo(
    pool: asyncpg.Pool,
    settings: Any,
    executor: Executor,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    vips.configure()
    side = max(1200, settings.min_side, settings.zoom_side)
    loop = asyncio.get_running_loop()
    photos = await loop.run_in_executor(executor, generate_catalogue, side)
    async with pool.acquire() as conn:
        actor = await ensure_demo_user(conn)
    items = [
        ImportItem(filename=p.filename, load=lambda data=p.data: data, product=p.product)
        for p in photos
    ]
    return await ImportRun(pool, settings, executor, actor, "demo",
                           on_progress=on_progress).run(items)
