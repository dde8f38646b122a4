"""The admin pages staff work in: dashboard, import, library, review, photo, channels, export,
users, audit.

Thin handlers: parse the query or form, call the catalog use cases, render a template. The guard
has already checked each route's role (anonymous page requests are sent to /login) and, for
forms, the CSRF token. After a successful form the handler redirects (POST → 303 → GET) with a
``done=`` word the page turns into a translated confirmation; a refused form renders the same
page again with the reason and the refusal's status.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from babel import numbers as babel_numbers

from ecogram import keys
from ecogram.auth.guard import csrf_token_for
from ecogram.auth.roles import ROLES, allows
from ecogram.catalog import (
    accounts,
    analytics,
    audit_trail,
    channel_board,
    events,
    exports,
    images,
    overview,
    previews,
)
from ecogram.catalog import channels as channels_uc
from ecogram.catalog import review as review_uc
from ecogram.catalog.delivery import EXTENSIONS
from ecogram.catalog.records import image_record
from ecogram.errors import AppError, invalid, not_found
from ecogram.i18n import LANG_COOKIE, LANGUAGES, localizer_for
from ecogram.inputs import no_files, read_form, takes_files
from ecogram.pages import render_page
from ecogram.views.api_auth import client_address
from ecogram.views.pages_auth import safe_next

PER_PAGE_CHOICES = (24, 48, 96)
# Sorts offered on the library page (every one is an images.SORTS value).
LIBRARY_SORTS = ("-imported_at", "imported_at", "code", "-code", "-file_size", "status",
                 "-reviewed_at")
BULK_ACTIONS = {"approve": "reviewer", "reject": "reviewer", "export": "reviewer",
                "delete": "admin"}
# The actions the audit page's filter offers (the names are in templates/_partials.html).
AUDIT_ACTIONS = ("image.imported", "image.approved", "image.rejected", "image.edited",
                 "image.replaced", "image.deleted", "image.purged", "import.batch", "export",
                 "login", "logout", "login.failed", "password.failed", "user.register",
                 "user.create", "user.password", "user.role", "user.disabled")
_DONE = frozenset({"approved", "rejected", "deleted", "edited", "replaced", "user_saved",
                   "bulk", "review_empty"})


# --- helpers -------------------------------------------------------------------------------------

def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _page(request: web.Request, template: str, context: dict[str, Any],
          status: int = 200) -> web.Response:
    user = request[keys.user]
    done = request.query.get("done")
    base = {
        "user": user,
        "csrf_token": csrf_token_for(request),
        "can_import": allows(user.role, "importer"),
        "can_review": allows(user.role, "reviewer"),
        "is_admin": allows(user.role, "admin"),
        "done": done if done in _DONE else None,
        "done_count": _small_int(request.query.get("n")),
        "path": request.path,
    }
    response = render_page(template, request, {**base, **context}, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _small_int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 7 else None


def _id(request: web.Request, name: str = "id", what: str = "image") -> int:
    raw = request.match_info[name]
    if len(raw) > 18 or int(raw) == 0:
        raise not_found(f"There is no {what} with this id.")
    return int(raw)


def _text(values: Mapping[str, Any], name: str, limit: int = 200) -> str:
    value = values.get(name, "")
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if "\x00" in value or len(value) > limit:
        raise invalid(f"{name} is not acceptable.", fields={name: f"at most {limit} characters"})
    return value


def _date(values: Mapping[str, Any], name: str) -> dt.date | None:
    raw = _text(values, name, 40)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise invalid(f"{name} must be a date (YYYY-MM-DD).", fields={name: "a date"}) from None


def _day_start(day: dt.date | None, tz: dt.tzinfo, plus_days: int = 0) -> dt.datetime | None:
    """Midnight of ``day`` in the viewer's zone (filters speak in the viewer's days)."""
    if day is None:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=plus_days), dt.time(), tzinfo=tz)


def _int(values: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    raw = _text(values, name, 12)
    if not raw:
        return default
    if not re.fullmatch(r"\d{1,9}", raw) or not lo <= int(raw) <= hi:
        raise invalid(f"{name} must be a whole number from {lo} to {hi}.",
                      fields={name: f"from {lo} to {hi}"})
    return int(raw)


def _record(request: web.Request, row) -> dict[str, Any]:
    return image_record(row, request.app[keys.settings].public_url)


def _query_string(params: Mapping[str, Any], **changes: Any) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return urllib.parse.urlencode(merged)


# --- home, language --------------------------------------------------------------------------

async def home(request: web.Request) -> web.Response:
    return _redirect("/admin")


async def switch_language(request: web.Request) -> web.Response:
    """``/lang?to=pt_BR&next=/admin``: remember the choice in a cookie, go back."""
    lang = request.query.get("to", "")
    response = _redirect(safe_next(request.query.get("next")))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, path="/",
                            samesite="Lax", httponly=True)
    return response


# --- dashboard ---------------------------------------------------------------------------------

async def dashboard(request: web.Request) -> web.Response:
    user = request[keys.user]
    tz = localizer_for(request).tz
    async with request.app[keys.db_pool].acquire() as conn:
        board = await overview.dashboard(conn, tz=tz, with_audit=allows(user.role, "admin"))
        delivery = await analytics.week_panel(conn)
    users = ({u["id"]: u for u in await accounts.list_users(request.app[keys.db_pool])}
             if board.recent else {})
    return _page(request, "admin/dashboard.html", {
        "board": board,
        "users": users,
        "chart": _chart(board),
        "delivery": delivery,
        "percent": _percent(request),
        "waiting": [_record(request, row) for row in board.waiting],
    })


def _percent(request: web.Request):
    """A ratio as the page's language writes a percentage (95.5%, 95,5%)."""
    lang = localizer_for(request).lang

    def percent(ratio: float | None) -> str:
        if ratio is None:
            return "–"
        return babel_numbers.format_percent(ratio, "#,##0.#%", locale=lang)

    return percent


def _chart(board: overview.Dashboard) -> dict[str, Any]:
    """Geometry of the imports-per-day bar chart, computed here so the SVG stays simple."""
    width, height, pad_left, pad_bottom, pad_top = 600, 180, 34, 22, 8
    days = board.per_day
    busiest = max(board.busiest, 1)
    inner_w = width - pad_left - 4
    inner_h = height - pad_bottom - pad_top
    slot = inner_w / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        bar_h = round(inner_h * day.count / busiest, 1)
        bars.append({
            "x": round(pad_left + index * slot + slot * 0.15, 1),
            "y": round(pad_top + inner_h - bar_h, 1),
            "w": round(slot * 0.7, 1),
            "h": bar_h,
            "day": day.day,
            "count": day.count,
            "label": (len(days) - 1 - index) % 7 == 0,  # today, and every week before
            "cx": round(pad_left + index * slot + slot / 2, 1),
        })
    return {"width": width, "height": height, "bars": bars, "max": board.busiest,
            "top": pad_top, "base": pad_top + inner_h, "left": pad_left,
            "total": sum(d.count for d in days)}


# --- import ------------------------------------------------------------------------------------

async def import_page(request: web.Request) -> web.Response:
    settings = request.app[keys.settings]
    return _page(request, "admin/import.html", {
        "max_upload_mb": settings.max_upload_mb,
        "min_side": settings.min_side,
        # The page orders a drop's photos as the server reads their names.
        "filename_pattern": settings.filename_pattern,
    })


# --- library -----------------------------------------------------------------------------------

def _library_query(request: web.Request) -> tuple[images.ListQuery, dict[str, str]]:
    q = request.query
    tz = localizer_for(request).tz
    status = _text(q, "status", 20) or None
    since, until = _date(q, "since"), _date(q, "until")
    sort = _text(q, "sort", 20) or images.DEFAULT_SORT
    if sort not in images.SORTS:
        sort = images.DEFAULT_SORT
    per_page = _int(q, "per_page", PER_PAGE_CHOICES[0], 1, images.MAX_PER_PAGE)
    codes = tuple(c.strip() for c in _text(q, "code").split(",") if c.strip()) or None
    query = images.ListQuery(
        status=status if status in images.STATUSES else None,
        codes=codes,
        q=_text(q, "q") or None,
        importer=_text(q, "importer") or None,
        since=_day_start(since, tz),
        until=_day_start(until, tz, plus_days=1),  # "until" includes that whole day
        sort=sort,
        page=_int(q, "page", 1, 1, images.MAX_PAGE),
        per_page=per_page,
    )
    params = {name: _text(q, name) for name in
              ("status", "code", "q", "importer", "since", "until", "sort", "per_page")}
    return query, params


async def library(request: web.Request) -> web.Response:
    try:
        query, params = _library_query(request)
    except AppError as error:
        if error.status != 422:
            raise
        return _page(request, "admin/library.html", {
            "items": [], "total": 0, "params": {}, "query": images.ListQuery(),
            "error": error, "pages": 0, "sorts": LIBRARY_SORTS,
            "per_page_choices": PER_PAGE_CHOICES, "qs": _query_string,
        }, status=422)
    async with request.app[keys.db_pool].acquire() as conn:
        rows, total = await images.list_images(conn, query)
    pages = max(1, -(-total // query.per_page))
    return _page(request, "admin/library.html", {
        "items": [_record(request, row) for row in rows],
        "total": total,
        "query": query,
        "params": params,
        "pages": pages,
        "sorts": LIBRARY_SORTS,
        "per_page_choices": PER_PAGE_CHOICES,
        "qs": _query_string,
        "formats": exports.FORMATS,
    })


def _form_ids(form: Any) -> list[int]:
    ids = []
    for raw in form.getall("ids", []):
        if isinstance(raw, str) and re.fullmatch(r"\d{1,18}", raw.strip()) and int(raw) > 0:
            ids.append(int(raw))
    return list(dict.fromkeys(ids))


async def library_bulk(request: web.Request) -> web.Response:
    """Many selected photos at once: approve, reject (with a reason), delete, export."""
    form = await read_form(request)
    user = request[keys.user]
    action = _text(form, "action", 20)
    back = safe_next(_text(form, "back", 2000) or "/admin/library")
    if action not in BULK_ACTIONS:
        raise invalid("Choose what to do with the selected photos.", fields={"action": "one of "
                      + ", ".join(BULK_ACTIONS)})
    if not allows(user.role, BULK_ACTIONS[action]):
        raise AppError(403, "forbidden", "Your role does not allow this.",
                       {"required": BULK_ACTIONS[action]})
    ids = _form_ids(form)
    if not ids:
        raise invalid("Select at least one photo.", fields={"ids": "at least one"})
    if len(ids) > review_uc.MAX_BULK:
        raise invalid(f"At most {review_uc.MAX_BULK} photos at once.",
                      fields={"ids": f"at most {review_uc.MAX_BULK}"})
    pool = request.app[keys.db_pool]
    hooks = events.of(request.app)
    if action in ("approve", "reject"):
        async with pool.acquire() as conn:
            outcomes = await review_uc.review(conn, user, action, ids,
                                              _text(form, "reason", review_uc.MAX_NOTE) or None,
                                              events=hooks)
        done = sum(1 for outcome in outcomes if outcome.ok)
        return _redirect(_with_done(back, "bulk", done))
    if action == "delete":
        done = 0
        async with pool.acquire() as conn:
            for image_id in ids:
                try:
                    await images.delete_image(conn, user, image_id, events=hooks)
                except AppError as error:
                    if error.status not in (404, 409):
                        raise
                else:
                    done += 1
        return _redirect(_with_done(back, "bulk", done))
    # export: the approved photos of the selected products, in the chosen format
    fmt = _text(form, "format", 20) or "shopify"
    if fmt not in exports.FORMATS:
        raise invalid("Choose an export format.", fields={"format": ", ".join(exports.FORMATS)})
    async with pool.acquire() as conn:
        codes = []
        for image_id in ids:
            try:
                codes.append((await images.get_image(conn, image_id))["code"])
            except AppError as error:
                if error.status != 404:
                    raise
    codes = list(dict.fromkeys(codes))
    if not codes:
        raise not_found("None of the selected photos exists any more.")
    return _redirect(f"/api/v1/exports/{fmt}?" + urllib.parse.urlencode({"code": ",".join(codes)}))


def _with_done(path: str, done: str, count: int | None = None) -> str:
    parts = urllib.parse.urlsplit(path)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("done", "n")]
    query.append(("done", done))
    if count is not None:
        query.append(("n", str(count)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


# --- review queue --------------------------------------------------------------------------------

async def review_queue(request: web.Request) -> web.Response:
    """One photo at a time, oldest first: ``?id=`` shows a given one."""
    raw = request.query.get("id", "")
    async with request.app[keys.db_pool].acquire() as conn:
        if raw:
            if not re.fullmatch(r"\d{1,18}", raw) or int(raw) == 0:
                raise not_found("There is no image with this id.")
            image_id: int | None = int(raw)
        else:
            image_id = await overview.first_pending(conn)
        if image_id is None:
            board = await overview.dashboard(conn, with_audit=False, waiting=0, days=1)
            return _page(request, "admin/review.html", {"image": None, "board": board})
        row = await images.get_image(conn, image_id)
        place = await overview.queue_place(conn, row)
        board = await overview.dashboard(conn, with_audit=False, waiting=0, days=1)
    return _page(request, "admin/review.html", {
        "image": _record(request, row), "place": place, "board": board,
        "reason": "", "error": None,
    })


async def review_submit(request: web.Request) -> web.Response:
    image_id = _id(request)
    form = await read_form(request)
    action = _text(form, "action", 20)
    reason = _text(form, "reason", review_uc.MAX_NOTE)
    async with request.app[keys.db_pool].acquire() as conn:
        try:
            row = await review_uc.review_one(conn, request[keys.user], action, image_id,
                                             reason or None, events=events.of(request.app))
        except AppError as error:
            if error.status not in (409, 422):
                raise
            row = await images.get_image(conn, image_id)
            place = await overview.queue_place(conn, row)
            board = await overview.dashboard(conn, with_audit=False, waiting=0, days=1)
            return _page(request, "admin/review.html", {
                "image": _record(request, row), "place": place, "board": board,
                "reason": reason, "error": error,
            }, status=error.status)
        place = await overview.queue_place(conn, row)
    done = "approved" if row["status"] == "approved" else "rejected"
    following = place.next_id or await _first(request)
    target = f"/admin/review?id={following}" if following else "/admin/review"
    return _redirect(_with_done(target, done) + f"&last={image_id}")


async def _first(request: web.Request) -> int | None:
    async with request.app[keys.db_pool].acquire() as conn:
        return await overview.first_pending(conn)


# --- one photo -----------------------------------------------------------------------------------

async def _photo_context(request: web.Request, image_id: int) -> dict[str, Any]:
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.get_image(conn, image_id)
        history, _total = await audit_trail.list_entries(
            conn, audit_trail.AuditQuery(image_id=image_id, per_page=50))
        per_channel = await channel_board.photo_channels(
            conn, _enabled_channels(request), dict(row), localizer_for(request).lang)
    record = _record(request, row)
    for entry in per_channel:
        entry["preview"] = _rendition_preview(record, entry["channel"])
    return {"image": record, "history": history, "snippet": _snippet(record),
            "preview_widths": previews.WIDTHS[:3], "channels": per_channel}


def _rendition_preview(record: dict[str, Any], profile) -> str:
    """Where the page shows a channel's rendition: the /img file of an approved photo (same
    origin: the page's CSP allows images from 'self' only), else the staff preview."""
    if record["status"] == "approved":
        code = urllib.parse.quote(record["code"], safe="")
        ext = EXTENSIONS[profile.output][0]
        return f"/img/{code}/{record['position']}/{profile.id}.{ext}?v={record['version']}"
    return f"/admin/images/{record['id']}/channel/{profile.id}"


def _snippet(record: dict[str, Any]) -> str:
    """The storefront's ready-to-paste responsive image."""
    urls = record["urls"]
    alt = record["alt"] or record["product"] or record["code"]
    attrs = {
        "src": urls["src"],
        "srcset": urls["srcset"],
        "sizes": "(min-width: 64em) 33vw, (min-width: 40em) 50vw, 100vw",
        "width": str(record["width"]),
        "height": str(record["height"]),
        "alt": alt,
        "loading": "lazy",
        "decoding": "async",
    }
    # Escaped for an HTML attribute; the template escapes the whole snippet once more for display.
    text = " ".join(f'{k}="{_attr(v)}"' for k, v in attrs.items())
    return f"<img {text}>"


def _attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


async def photo(request: web.Request) -> web.Response:
    return _page(request, "admin/photo.html", await _photo_context(request, _id(request)))


async def _photo_refused(request: web.Request, image_id: int, error: AppError,
                         **extra: Any) -> web.Response:
    context = await _photo_context(request, image_id)
    return _page(request, "admin/photo.html", {**context, "error": error, **extra},
                 status=error.status)


async def photo_edit(request: web.Request) -> web.Response:
    image_id = _id(request)
    form = await read_form(request)
    changes: dict[str, Any] = {}
    for name in ("code", "product", "alt"):
        value = form.get(name)
        if isinstance(value, str):
            changes[name] = value
    raw_position = form.get("position")
    try:
        if isinstance(raw_position, str) and raw_position.strip():
            if not re.fullmatch(r"\d{1,6}", raw_position.strip()):
                raise invalid("position must be a whole number from 1.",
                              fields={"position": "an integer from 1"})
            changes["position"] = int(raw_position)
        version = _int(form, "version", 0, 0, 2**31 - 1) or None
        async with request.app[keys.db_pool].acquire() as conn:
            await images.edit_image(conn, request[keys.user], image_id, changes,
                                    version=version, events=events.of(request.app))
    except AppError as error:
        if error.status not in (409, 422):
            raise
        return await _photo_refused(request, image_id, error, form_values=changes)
    return _redirect(f"/admin/images/{image_id}?done=edited")


@takes_files("file")
async def photo_replace(request: web.Request) -> web.Response:
    """A new photo for this record, from the page's file field (multipart form)."""
    image_id = _id(request)
    settings = request.app[keys.settings]
    try:
        # The guard may have read the form already (for its CSRF field): read_form keeps file
        # fields in temporary files, bounds the form by the upload size and refuses what the
        # upload API refuses, with the same codes (``takes_files``, ``inputs.read_multipart``).
        form = await read_form(request)
        field = form.get("file")
        if not isinstance(field, web.FileField):
            raise no_files("file")
        with field.file:  # a spooled temporary file, on disk past 1 MB
            data = field.file.read()
        async with request.app[keys.db_pool].acquire() as conn:
            await images.replace_file(conn, request[keys.user], image_id, data, field.filename,
                                      settings, request.app[keys.vips_executor],
                                      events=events.of(request.app))
    except AppError as error:
        if error.status not in (409, 413, 415, 422):
            raise
        return await _photo_refused(request, image_id, error)
    return _redirect(f"/admin/images/{image_id}?done=replaced")


async def photo_delete(request: web.Request) -> web.Response:
    image_id = _id(request)
    async with request.app[keys.db_pool].acquire() as conn:
        await images.delete_image(conn, request[keys.user], image_id,
                                  events=events.of(request.app))
    return _redirect("/admin/library?done=deleted")


async def photo_preview(request: web.Request) -> web.Response:
    """``/admin/images/{id}/preview?w=320&v=7``: any live photo, for staff."""
    image_id = _id(request)
    raw = request.query.get("w", "320")
    if not re.fullmatch(r"\d{1,5}", raw):
        previews.check_width(-1)
    result = await previews.preview(request.app[keys.db_pool], request.app[keys.vips_executor],
                                    image_id, int(raw), cache=previews.cache_of(request.app))
    immutable = request.query.get("v") == str(result.version)
    etag = f'"p{image_id}-{result.version}-{raw}"'
    headers = {
        "Content-Type": result.content_type,
        "ETag": etag,
        # Private: previews of unapproved photos must never sit in a shared cache.
        "Cache-Control": "private, max-age=31536000, immutable" if immutable
        else "private, no-cache",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=result.data, headers=headers)


# --- channels board ------------------------------------------------------------------------------

def _enabled_channels(request: web.Request) -> list:
    settings = request.app[keys.settings]
    return [settings.channel_profiles[c] for c in settings.channels
            if c in settings.channel_profiles]


def _board_query(request: web.Request) -> tuple[channel_board.BoardQuery, dict[str, str]]:
    q = request.query
    params = {name: _text(q, name) for name in
              ("code", "q", "status", "channel", "ready", "per_page")}
    codes = tuple(dict.fromkeys(c.strip() for c in params["code"].split(",") if c.strip()))
    ready = {"": None, "true": True, "false": False}.get(params["ready"])
    if params["ready"] and ready is None:
        raise invalid("ready must be true or false.", fields={"ready": "true or false"})
    status = params["status"] or "approved"
    if status not in channels_uc.STATUSES:
        raise invalid("Choose which photos count.",
                      fields={"status": ", ".join(channels_uc.STATUSES)})
    per_page = _int(q, "per_page", channel_board.PER_PAGE_CHOICES[0], 1,
                    channels_uc.MAX_PER_PAGE)
    query = channel_board.BoardQuery(
        codes=codes or None, q=params["q"] or None, status=status,
        channel=params["channel"] or None, ready=ready,
        page=_int(q, "page", 1, 1, channels_uc.MAX_PAGE), per_page=per_page)
    return query, params


async def channels_page(request: web.Request) -> web.Response:
    """Products × enabled channels: ready or not, and why (``ecogram.catalog.channel_board``)."""
    enabled = _enabled_channels(request)
    base = {"enabled": enabled, "statuses": channels_uc.STATUSES, "qs": _query_string,
            "per_page_choices": channel_board.PER_PAGE_CHOICES}
    try:
        query, params = _board_query(request)
        async with request.app[keys.db_pool].acquire() as conn:
            found = await channel_board.board(conn, enabled, query,
                                              localizer_for(request).lang)
    except AppError as error:
        if error.status != 422:
            raise
        params = {name: request.query.get(name, "")[:200] for name in
                  ("code", "q", "status", "channel", "ready")}
        return _page(request, "admin/channels.html", {
            **base, "error": error, "params": params, "query": channel_board.BoardQuery(),
            "columns": [], "rows": [], "summaries": [], "total": 0, "pages": 0,
        }, status=422)
    return _page(request, "admin/channels.html", {
        **base, **found, "params": params, "query": query,
    })


# --- export --------------------------------------------------------------------------------------

async def export_page(request: web.Request) -> web.Response:
    return _page(request, "admin/export.html", {"formats": exports.FORMATS,
                                                "statuses": images.STATUSES})


async def export_download(request: web.Request) -> web.Response:
    """The export form (GET) → the API's file, which the browser downloads with its cookie."""
    q = request.query
    fmt = _text(q, "format", 20)
    if fmt not in exports.FORMATS:
        raise invalid("Choose an export format.", fields={"format": ", ".join(exports.FORMATS)})
    status = _text(q, "status", 20) or "approved"
    if status not in images.STATUSES:
        raise invalid("Choose a status.", fields={"status": ", ".join(images.STATUSES)})
    since = _day_start(_date(q, "since"), localizer_for(request).tz)
    params = {"status": status, "code": _text(q, "code", 20000),
              "since": since.isoformat() if since else ""}
    return _redirect(f"/api/v1/exports/{fmt}?" + _query_string(params))


# --- users (admins) ----------------------------------------------------------------------------

async def users_page(request: web.Request, error: AppError | None = None) -> web.Response:
    users = await accounts.list_users(request.app[keys.db_pool])
    return _page(request, "admin/users.html", {"users": users, "roles": ROLES, "error": error},
                 status=error.status if error else 200)


async def user_update(request: web.Request) -> web.Response:
    user_id = _id(request, what="user")
    form = await read_form(request)
    body: dict[str, Any] = {}
    role = _text(form, "role", 20)
    if role:
        body["role"] = role
    body["disabled"] = _text(form, "disabled", 10) in ("1", "true", "on")
    try:
        await accounts.update_user(request.app[keys.db_pool], request[keys.user], user_id,
                                   body, client=client_address(request))
    except AppError as error:
        if error.status not in (404, 409, 422):
            raise
        return await users_page(request, error)
    return _redirect("/admin/users?done=user_saved")


# --- audit (admins) ----------------------------------------------------------------------------

async def audit_page(request: web.Request) -> web.Response:
    q = request.query
    tz = localizer_for(request).tz
    image_id = _int(q, "image_id", 0, 0, 10**9)
    query = audit_trail.AuditQuery(
        image_id=image_id or None,
        actor=_text(q, "actor") or None,
        action=_text(q, "action", 100) or None,
        since=_day_start(_date(q, "since"), tz),
        until=_day_start(_date(q, "until"), tz, plus_days=1),
        page=_int(q, "page", 1, 1, audit_trail.MAX_PAGE),
        per_page=50,
    )
    async with request.app[keys.db_pool].acquire() as conn:
        entries, total = await audit_trail.list_entries(conn, query)
    # Entries about an account name it by its "user:<id>" target: the page shows the person.
    users = {u["id"]: u for u in await accounts.list_users(request.app[keys.db_pool])}
    params = {name: _text(q, name) for name in ("image_id", "actor", "action", "since", "until")}
    return _page(request, "admin/audit.html", {
        "entries": entries, "users": users, "actions": AUDIT_ACTIONS,
        "total": total, "query": query, "params": params,
        "pages": max(1, -(-total // query.per_page)), "qs": _query_string,
    })
