"""Languages of the admin pages: Portuguese (Brazil) and English.

The catalogues are the ``.po`` files in ``ecogram/locale/<lang>/LC_MESSAGES/messages.po``; they
are compiled in memory when the application starts (``read_po`` → ``write_mo`` into a buffer →
``Translations``), so no compiled ``.mo`` file is committed or can go stale.

The language of a request is the ``ecogram_lang`` cookie (the switch in the page header sets
it), else the best match of the browser's ``Accept-Language``, else English. Dates are shown in
the browser's time zone when it told us (``ecogram_tz`` cookie, set by static/app.js), else UTC;
dates and numbers follow the language's conventions (Babel's CLDR data).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages import mofile, pofile
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("en", "pt_BR")
DEFAULT_LANGUAGE = "en"
# What each language is called in its own language, for the switch.
LANGUAGE_NAMES = {"en": "English", "pt_BR": "Português (Brasil)"}
LANG_COOKIE = "ecogram_lang"
TZ_COOKIE = "ecogram_tz"
_LOCALE_KEY = web.AppKey("i18n_catalogues", dict)
i18n_key = web.RequestKey("i18n", object)


def load_catalogue(lang: str) -> Translations:
    """One language's ``.po`` file compiled in memory."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = pofile.read_po(handle, locale=lang)
    buffer = io.BytesIO()
    mofile.write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


def load_all() -> dict[str, Translations]:
    return {lang: load_catalogue(lang) for lang in LANGUAGES}


def _match(tag: str) -> str | None:
    """``pt-BR``, ``pt``, ``pt_PT`` → ``pt_BR``; ``en-GB`` → ``en``; others None."""
    tag = tag.strip().replace("-", "_")
    if not tag or tag == "*":
        return None
    try:
        locale = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return None
    if locale.language == "pt":
        return "pt_BR"  # the only Portuguese we have
    if locale.language == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (q-values honoured)."""
    choices: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = _match(tag)
        if lang is not None and quality > 0:
            choices.append((-quality, index, lang))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE


def choose_language(request: web.Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("Accept-Language"))


def _timezone(name: str | None) -> dt.tzinfo:
    if name and len(name) <= 64:
        try:
            return babel_dates.get_timezone(name)
        except LookupError:
            pass
    return dt.UTC


@dataclass(frozen=True)
class Localizer:
    """The language, its translations and formatting helpers of one request."""

    lang: str
    translations: Translations
    tz: dt.tzinfo = dt.UTC

    @property
    def html_lang(self) -> str:
        return self.lang.replace("_", "-")

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """A word whose translation depends on what it is said of (one photo's status is
        "aprovada", a count of them "aprovadas")."""
        return self.translations.pgettext(context, message)

    def datetime(self, value: dt.datetime | str | None, fmt: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return babel_dates.format_datetime(value, fmt, tzinfo=self.tz, locale=self.lang)

    def date(self, value: dt.date | dt.datetime | None, fmt: str = "medium") -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.tz).date()
        return babel_dates.format_date(value, fmt, locale=self.lang)

    def day_month(self, value: dt.date) -> str:
        """Day and month only, in the locale's order (11/28, 28/11): chart labels."""
        return babel_dates.format_skeleton("Md", value, locale=self.lang)

    def number(self, value: int | float | None) -> str:
        return "" if value is None else babel_numbers.format_decimal(value, locale=self.lang)

    def filesize(self, value: int | None) -> str:
        """Bytes as B/kB/MB/GB (powers of 1000, like file managers), in the locale's digits."""
        if value is None:
            return ""
        size = float(value)
        for unit in ("B", "kB", "MB", "GB"):
            if size < 1000 or unit == "GB":
                pattern = "#,##0" if unit == "B" else "#,##0.#"
                return f"{babel_numbers.format_decimal(size, pattern, locale=self.lang)} {unit}"
            size /= 1000
        raise AssertionError("unreachable")


def localizer_for(request: web.Request) -> Localizer:
    found = request.get(i18n_key)
    if isinstance(found, Localizer):
        return found
    catalogues = request.app.get(_LOCALE_KEY) or {}
    lang = choose_language(request)
    translations = catalogues.get(lang) or Translations()
    localizer = Localizer(lang, translations, _timezone(request.cookies.get(TZ_COOKIE)))
    request[i18n_key] = localizer
    return localizer


def gettext_for(request: web.Request):
    """``_`` for Python code that builds page text (flash messages)."""
    return localizer_for(request).gettext


# --- Jinja -------------------------------------------------------------------------------------

_FALLBACK = Localizer(DEFAULT_LANGUAGE, Translations())


def _localizer(context: Mapping[str, Any]) -> Localizer:
    """The page's localizer (pages.render_page puts it in the context), or plain English."""
    found = context.get("i18n")
    return found if isinstance(found, Localizer) else _FALLBACK


@jinja2.pass_context
def _gettext(context, message: str) -> str:
    return _localizer(context).gettext(message)


@jinja2.pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return _localizer(context).ngettext(singular, plural, n)


@jinja2.pass_context
def _pgettext(context, msgctxt: str, message: str) -> str:
    return _localizer(context).pgettext(msgctxt, message)


@jinja2.pass_context
def _npgettext(context, msgctxt: str, singular: str, plural: str, n: int) -> str:
    return _localizer(context).translations.npgettext(msgctxt, singular, plural, n)


@jinja2.pass_context
def _filter_datetime(context, value, fmt: str = "medium") -> str:
    return _localizer(context).datetime(value, fmt)


@jinja2.pass_context
def _filter_date(context, value, fmt: str = "medium") -> str:
    return _localizer(context).date(value, fmt)


@jinja2.pass_context
def _filter_day_month(context, value) -> str:
    return _localizer(context).day_month(value)


@jinja2.pass_context
def _filter_number(context, value) -> str:
    return _localizer(context).number(value)


@jinja2.pass_context
def _filter_filesize(context, value) -> str:
    return _localizer(context).filesize(value)


def setup(app: web.Application, env: jinja2.Environment) -> None:
    """Load the catalogues, and teach the template environment gettext and the formatters.

    The gettext callables are installed once, "new style" (``_("Hello %(name)s", name=x)``,
    autoescape-aware); each call finds its request's language in the template context.
    """
    app[_LOCALE_KEY] = load_all()
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext)
    env.filters["datetime"] = _filter_datetime
    env.filters["date"] = _filter_date
    env.filters["daymonth"] = _filter_day_month
    env.filters["number"] = _filter_number
    env.filters["filesize"] = _filter_filesize
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["page_lang"] = _page_lang
    env.globals["page_path"] = _page_path


@jinja2.pass_context
def _page_lang(context) -> str:
    """The page's language as an HTML lang attribute (pt-BR, en)."""
    return _localizer(context).html_lang


@jinja2.pass_context
def _page_path(context) -> str:
    """The page's own path and query (pages.render_page puts it in the context)."""
    return context.get("page_path_qs", "/")
