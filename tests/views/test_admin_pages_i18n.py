"""The page languages: negotiation, formatting, and catalogues that match the templates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ecogram import i18n

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"),
    ("", "en"),
    ("pt-BR,pt;q=0.9,en;q=0.8", "pt_BR"),
    ("pt-PT", "pt_BR"),
    ("pt", "pt_BR"),
    ("en-GB,en;q=0.9", "en"),
    ("de-DE,fr;q=0.8", "en"),
    ("de-DE,pt;q=0.3,en;q=0.2", "pt_BR"),
    ("en;q=0.5,pt-BR;q=0.9", "pt_BR"),
    ("pt-BR;q=0", "en"),
    ("*", "en"),
    ("x" * 5000, "en"),
    ("pt-BR;q=abc, en", "en"),
    (",,;;==", "en"),
])
def test_negotiate(header, expected):
    assert i18n.negotiate(header) == expected


def _template_messages() -> set[str]:
    found = set()
    method_map = [("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map=options
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _catalogue(lang: str):
    path = i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def test_portuguese_catalogue_translates_every_template_message():
    wanted = _template_messages()
    assert len(wanted) > 100
    catalogue = _catalogue("pt_BR")
    have = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalogue if m.id}
    missing = sorted(wanted - set(have))
    assert missing == [], "run pybabel extract/update (docs/admin-pages.md): " + repr(missing)
    untranslated = sorted(k for k in wanted if not all(
        have[k].string if isinstance(have[k].string, tuple) else [have[k].string]))
    assert untranslated == []
    assert not [m.id for m in catalogue if m.id and m.fuzzy]
    # Placeholders survive translation, or a page would fail to render.
    for key, message in have.items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            for name in ("%(num)s", "%(name)s", "%(rank)s", "%(total)s", "{n}", "{accepted}"):
                if name in key:
                    assert name in string, (key, string)


def test_english_catalogue_has_the_same_messages():
    wanted = _template_messages()
    english = {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalogue("en") if m.id}
    assert wanted - english == set()
    # Entries for texts that left the templates are cleaned up with the catalogue.
    assert english - wanted == set()


def test_catalogues_compile_in_memory():
    catalogues = i18n.load_all()
    assert catalogues["pt_BR"].gettext("Dashboard") == "Painel"
    assert catalogues["en"].gettext("Dashboard") == "Dashboard"
    assert catalogues["pt_BR"].ngettext("%(num)s photo", "%(num)s photos", 1) == "%(num)s foto"
    assert catalogues["pt_BR"].ngettext("%(num)s photo", "%(num)s photos", 5) == "%(num)s fotos"


def test_dates_numbers_and_sizes_follow_the_language():
    catalogues = i18n.load_all()
    moment = dt.datetime(2025, 3, 9, 15, 4, tzinfo=dt.UTC)
    pt = i18n.Localizer("pt_BR", catalogues["pt_BR"], i18n._timezone("America/Sao_Paulo"))
    en = i18n.Localizer("en", catalogues["en"])
    assert pt.datetime(moment, "short") == "09/03/2025 12:04"  # São Paulo is UTC-3
    assert en.datetime(moment, "short").startswith("3/9/25")
    assert pt.number(1234567) == "1.234.567" and en.number(1234567) == "1,234,567"
    assert pt.filesize(1_536_000) == "1,5 MB" and en.filesize(1_536_000) == "1.5 MB"
    assert en.filesize(999) == "999 B"
    assert pt.day_month(dt.date(2025, 3, 9)) == "09/03"
    assert en.day_month(dt.date(2025, 3, 9)) == "3/9"
    assert pt.datetime(moment.isoformat(), "short") == "09/03/2025 12:04"


def test_bad_time_zone_cookie_falls_back_to_utc():
    assert i18n._timezone("Not/AZone") == dt.UTC
    assert i18n._timezone("x" * 500) == dt.UTC
    assert i18n._timezone(None) == dt.UTC
