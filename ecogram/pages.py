"""Every HTML page is rendered here: in the request's language, with the page security headers.

The template context gets the localizer (gettext, dates, numbers) and the page's own address
(the language switch comes back to it); the response says its language and carries the
Content-Security-Policy and framing rules. Pages only: JSON and images need none of this, so
/img pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ecogram.i18n import localizer_for

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def render_page(template: str, request: web.Request, context: Mapping[str, Any],
                status: int = 200) -> web.Response:
    localizer = localizer_for(request)
    response = aiohttp_jinja2.render_template(
        template, request, {**context, "i18n": localizer, "page_path_qs": request.path_qs},
        status=status,
    )
    response.headers["Content-Language"] = localizer.html_lang
    response.headers.update(PAGE_HEADERS)
    return response
