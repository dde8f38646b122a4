"""Helpers for the /img tests: photos go in through the real import API and get approved through
the real review API, so what /img serves is exactly what production stores."""

from __future__ import annotations

import io

import aiohttp
import pyvips

from tests.conftest import IMAGES

CHROMIUM_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_ACCEPT = (
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,"
    "image/svg+xml,image/*;q=0.8,*/*;q=0.5"
)
OLD_BROWSER_ACCEPT = "image/png,image/*;q=0.8,*/*;q=0.5"  # Firefox before WebP (2019)


def fixture_bytes(relative: str) -> bytes:
    return (IMAGES / relative).read_bytes()


async def import_photo(client, login_as, data: bytes, code: str, *,
                       filename: str = "photo.jpg", position: int | None = None) -> dict:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    form.add_field("code", code)
    if position is not None:
        form.add_field("position", str(position))
    response = await client.post("/api/v1/images", data=form, headers=await login_as("importer"))
    body = await response.json()
    assert response.status == 201, body
    item = body["items"][0]
    assert item["outcome"] == "accepted", item
    return item["record"]


async def review(client, login_as, image_id: int, action: str = "approve") -> dict:
    response = await client.post(f"/api/v1/images/{image_id}/{action}",
                                 json={"reason": "test"}, headers=await login_as("reviewer"))
    assert response.status == 200, await response.text()
    return await response.json()


async def publish(client, login_as, data: bytes, code: str, **kwargs) -> dict:
    """Import and approve one photo; the approved record."""
    record = await import_photo(client, login_as, data, code, **kwargs)
    return await review(client, login_as, record["id"], "approve")


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def oriented_jpeg(width: int, height: int, orientation: int) -> bytes:
    """A JPEG stored ``width`` x ``height`` with a red block top-left (as stored) and the
    given EXIF orientation, so it displays differently from how it is stored."""
    image = pyvips.Image.black(width, height, bands=3).new_from_image([255, 255, 255])
    image = image.cast("uchar").copy_memory()
    image = image.draw_rect([255, 0, 0], 0, 0, width // 4, height // 4, fill=True)
    image = image.copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.jpegsave_buffer(Q=95, keep="exif")


def png_bytes(image: pyvips.Image) -> bytes:
    buffer = io.BytesIO(image.pngsave_buffer())
    return buffer.getvalue()
