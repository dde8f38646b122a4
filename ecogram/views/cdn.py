"""Public delivery: ``GET|HEAD /img/{code}[/{position}]``, their ``/placeholder``, the channel
rendition path form ``/img/{code}/{position}/{channel}.{ext}``; and the staff's preview of a
rendition of any photo, ``/admin/images/{id}/channel/{channel}``.

Thin on purpose — this is the hottest path of the service: read the request, let the delivery
use case answer, copy its status, headers and bytes. HEAD gets the same headers (aiohttp sends
no body for HEAD, and keeps Content-Length).
"""

from __future__ import annotations

from aiohttp import hdrs, web
from multidict import istr

from ecogram import keys, models
from ecogram.catalog.delivery import Answer
from ecogram.contract import BINARY, Media, operation
from ecogram.imaging.options import Hints

# The client hints /img honours, as istr: a lookup then skips folding the name's case (three
# lookups of absent headers cost ~60 ns instead of ~140 on a warm answer of ~2.0 µs).
SEC_CH_WIDTH = istr("Sec-CH-Width")
SEC_CH_DPR = istr("Sec-CH-DPR")
SAVE_DATA = istr("Save-Data")


NOT_MODIFIED = Media({}, "Not modified (If-None-Match)")


def _position(request: web.Request) -> int | None:
    raw = request.match_info.get("position")
    return int(raw) if raw is not None else None


def _respond(answer: Answer) -> web.Response:
    # web.Response copies the headers it is given (at C speed from a CIMultiDict, which is how
    # a replayed answer keeps them), so the shared ones are never changed.
    if answer.status == 304:
        return web.Response(status=304, headers=answer.headers)
    return web.Response(body=answer.body, headers=answer.headers)


IMAGE = Media({"image/*": BINARY}, "The image", {
    "ETag": "The variant's tag (If-None-Match: 304)",
    "Vary": "The request headers that changed the answer"})


@operation("An approved photo, resized on the fly",
           description="Sizes outside the allowed list need a signature (GET "
           "/api/v1/images/{id}/signed-url). The format follows fmt, else Accept (AVIF, WebP); "
           "the size, without w, follows Sec-CH-Width and Sec-CH-DPR; Save-Data lowers the "
           "quality one step (docs/delivery.md).",
           described_query=models.ImgQuery, responses={200: IMAGE, 304: NOT_MODIFIED},
           errors=(403,))
async def image(request: web.Request) -> web.Response:
    delivery = request.app[keys.delivery]
    target = request.raw_path  # path and query as sent: the replay's key, no parsing
    headers = request.headers
    accept = headers.get(hdrs.ACCEPT)
    if_none_match = headers.get(hdrs.IF_NONE_MATCH)
    # Client hints (docs/delivery.md): None when the request sends none, the common case.
    width, dpr, save_data = (
        headers.get(SEC_CH_WIDTH), headers.get(SEC_CH_DPR), headers.get(SAVE_DATA)
    )
    hints = (
        Hints(width, dpr, save_data)
        if width is not None or dpr is not None or save_data is not None else None
    )
    answer = delivery.replay(target, accept, if_none_match, hints) or await delivery.serve(
        target,
        request.match_info["code"],
        _position(request),
        request.path,
        request.rel_url.raw_query_string,
        accept,
        if_none_match,
        hints,
    )
    return _respond(answer)


@operation("The blurhash placeholder of an approved photo",
           described_query=models.VersionQuery,
           responses={200: models.Placeholder, 304: NOT_MODIFIED})
async def placeholder(request: web.Request) -> web.Response:
    answer = await request.app[keys.delivery].placeholder(
        request.match_info["code"],
        _position(request),
        request.query,
        request.headers.get(hdrs.IF_NONE_MATCH),
    )
    return _respond(answer)


@operation("A sales channel's rendition of an approved photo, as a file name",
           description="What ?preset={channel} serves, under a name with the extension of the "
           "channel's format (jpg or jpeg for JPEG, png, webp); another extension or an unknown "
           "channel is a 404. The findings the rendition could not fix are in "
           "X-Ecogram-Findings.", described_query=models.VersionQuery,
           responses={200: Media({f"image/{kind}": BINARY for kind in ("jpeg", "png", "webp")},
                                 "The rendition"), 304: NOT_MODIFIED})
async def channel_file(request: web.Request) -> web.Response:
    """``/img/{code}/{position}/{channel}.{ext}``: what ``?preset={channel}`` serves. The
    format is the channel's, so ``Accept`` plays no part (the replay is keyed without it)."""
    delivery = request.app[keys.delivery]
    target = request.raw_path
    if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
    answer = delivery.replay(target, None, if_none_match)
    if answer is None:
        info = request.match_info
        ask, wanted_version = delivery.channel_file(
            info["channel"], info["ext"], request.rel_url.raw_query_string
        )
        answer = await delivery.serve_rendition(
            target, None, info["code"], _position(request), ask, wanted_version, if_none_match
        )
    return _respond(answer)


async def channel_preview(request: web.Request) -> web.Response:
    """A channel's rendition of one photo whatever its status (staff; cached privately)."""
    answer = await request.app[keys.delivery].preview_rendition(
        int(request.match_info["id"]),
        request.match_info["channel"],
        request.headers.get(hdrs.IF_NONE_MATCH),
    )
    return _respond(answer)
