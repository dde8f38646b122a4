"""The page languages: negotiation, formatting, catalogues that match the templates and the
sentences Python writes for pages, and no English sentence on a Portuguese page."""

from __future__ import annotations

import ast
import datetime as dt
import html as htmllib
import json
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from ecogram import i18n, page_texts
from ecogram.catalog import accounts, channels
from ecogram.errors import AppError, invalid
from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD

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


def _page_messages() -> set[str | tuple[str, str]]:
    """Every text the pages show, as ``pybabel extract`` finds it with the README's command:
    the templates and the sentences Python writes for pages (ecogram/page_texts.py). A message
    with a context is (context, id)."""
    with (i18n.LOCALE_DIR / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map=options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.add((context, msgid) if context else msgid)
    return found


def _key(message) -> str | tuple[str, str]:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return (message.context, msgid) if message.context else msgid


def _catalogue(lang: str):
    path = i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def test_portuguese_catalogue_translates_every_page_message():
    wanted = _page_messages()
    assert len(wanted) > 250
    # Python's sentences are part of it: errors, findings, the command line as an actor.
    assert {"A rejection needs a reason.", "command line",
            page_texts.WARNINGS["not_square"]} <= wanted
    catalogue = _catalogue("pt_BR")
    have = {_key(m): m for m in catalogue if m.id}
    missing = sorted(map(str, wanted - set(have)))
    assert missing == [], "run pybabel extract/update (docs/admin-pages.md): " + repr(missing)
    untranslated = sorted(str(k) for k in wanted if not all(
        have[k].string if isinstance(have[k].string, tuple) else [have[k].string]))
    assert untranslated == []
    assert not [m.id for m in catalogue if m.id and m.fuzzy]
    # Placeholders survive translation, or a page would fail to render.
    for key, message in have.items():
        msgid = key[1] if isinstance(key, tuple) else key
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            for name in re.findall(r"%\(\w+\)s|\{\w+\}", msgid):
                assert name in string, (key, string)


def test_english_catalogue_has_the_same_messages():
    wanted = _page_messages()
    english = {_key(m) for m in _catalogue("en") if m.id}
    assert wanted - english == set()
    # Entries for texts that left the templates are cleaned up with the catalogue.
    assert english - wanted == set()


# --- errors the service raises, as pages show them ----------------------------------------------

# Constructors of AppError and where their code and message are: (code arg, message arg).
_RAISERS = {"AppError": (1, 2), "conflict": (0, 1), "bad_request": (0, 1)}
_FIELD_RAISERS = {"invalid": 0, "invalid_field": 1}


def _raised() -> tuple[set[str], list[tuple[str, str]], int]:
    """Error codes raised anywhere in ecogram/, and the literal messages of field errors
    (invalid_fields, whose code says too little): ([codes], [(where, message)], calls seen)."""
    codes: set[str] = set()
    field_messages: list[tuple[str, str]] = []
    calls = 0
    for path in (ROOT / "ecogram").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in _RAISERS:
                code_at, _message_at = _RAISERS[name]
                if len(node.args) > code_at and isinstance(node.args[code_at], ast.Constant) \
                        and isinstance(node.args[code_at].value, str):
                    codes.add(node.args[code_at].value)
                    calls += 1
            elif name == "not_found":
                code = next((k.value for k in node.keywords if k.arg == "code"), None)
                codes.add(code.value if isinstance(code, ast.Constant) else "not_found")
                calls += 1
            elif name == "too_large" and len(node.args) > 2:
                if isinstance(node.args[2], ast.Constant):
                    codes.add(node.args[2].value)
            elif name in _FIELD_RAISERS:
                at = _FIELD_RAISERS[name]
                if len(node.args) > at and isinstance(node.args[at], ast.Constant):
                    field_messages.append((where, node.args[at].value))
                calls += 1
    # The middleware names the HTTP errors aiohttp raises (404 for an unknown page...).
    from ecogram.middleware import _HTTP_CODES
    codes |= set(_HTTP_CODES.values()) | {"http_error", "file_too_large", "invalid_fields"}
    return codes, field_messages, calls


def test_every_error_code_the_service_raises_has_a_page_sentence():
    codes, _field_messages, calls = _raised()
    assert calls > 100 and {"too_small", "no_code", "not_pending", "last_admin"} <= codes
    assert sorted(codes - set(page_texts.ERRORS)) == []


def test_every_literal_field_error_is_catalogued_word_for_word():
    _codes, field_messages, _calls = _raised()
    known = set(page_texts.MESSAGES)
    # Field errors with a fixed sentence are translated as they are; those built with
    # f-strings fall back to "Some values are not acceptable." plus the fields' names.
    assert sorted({m for _where, m in field_messages} - known) == []
    # And every catalogued sentence is still raised somewhere (a reworded one is noticed).
    raised_anywhere = {m for _w, m in field_messages} | _all_literal_strings()
    assert sorted(known - raised_anywhere) == []


def _all_literal_strings() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "ecogram").rglob("*.py"):
        if path.name == "page_texts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    # The channels' readiness sentences are written in both languages in Python (the API has
    # no catalogue): the Portuguese ones belong on Portuguese pages.
    return found - {text for (_code, lang), text in channels.MESSAGES.items() if lang == "pt_BR"}


def _pt() -> i18n.Localizer:
    return i18n.Localizer("pt_BR", i18n.load_all()["pt_BR"])


def test_error_sentences_in_portuguese():
    pt = _pt()
    # Word for word, by code with its details, by status when the details lack a name.
    assert page_texts.page_error(pt, invalid("A rejection needs a reason.", fields={
        "reason": "required to reject"})).message == "Para reprovar, informe o motivo."
    small = AppError(422, "too_small", "The image is 300x200 pixels; ...",
                     {"width": 300, "height": 200, "min_side": 500})
    assert page_texts.page_error(pt, small).message == (
        "A imagem tem 300 × 200 pixels; o lado menor precisa ter pelo menos 500 pixels.")
    assert page_texts.page_error(pt, AppError(422, "too_small", "x", {})).message \
        == "Alguns valores não são aceitáveis."
    assert page_texts.page_error(pt, AppError(418, "teapot", "I am a teapot.")).message \
        == "Não foi possível entender o pedido."
    assert page_texts.page_error(pt, AppError(503, "whatever", "Down.")).message.startswith(
        "Algo deu errado")
    # A field error built with an f-string: the general sentence, the field by its name.
    shown = page_texts.page_error(pt, invalid("product is too long.", fields={
        "product": "at most 500 characters"}))
    assert shown.message == "Alguns valores não são aceitáveis."
    assert shown.fields == (("nome do produto", None),)
    # English pages keep the service's own sentence and the field's problem.
    en = i18n.Localizer("en", i18n.load_all()["en"])
    shown = page_texts.page_error(en, invalid("product is too long.", fields={
        "product": "at most 500 characters"}))
    assert shown.message == "product is too long."
    assert shown.fields == (("product name", "at most 500 characters"),)


def test_every_quality_finding_has_a_sentence_and_a_name():
    found = set()
    for path in (ROOT / "ecogram").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'\bwarn\("(\w+)"', text))
        found |= set(re.findall(r'warnings\.append\(\{\s*"code": "(\w+)"', text))
    assert {"not_square", "low_resolution", "near_duplicate", "same_image_elsewhere"} <= found
    assert sorted(found - set(page_texts.WARNINGS)) == []
    assert set(page_texts.WARNING_NAMES) == set(page_texts.WARNINGS)


def test_findings_and_actors_in_portuguese():
    pt = _pt()
    qc = {"width": 1200, "height": 800}
    assert page_texts.warning_text(pt, {"code": "not_square", "message": "The image is 1200x800,"
                                        " not square."}, qc) \
        == "A imagem tem 1200 × 800 pixels: não é quadrada."
    assert page_texts.warning_text(pt, {"code": "low_resolution"}, qc).startswith(
        "O lado maior tem 1200 pixels")
    assert page_texts.warning_text(pt, {"code": "new_kind", "message": "English."}) \
        == "Um apontamento de qualidade que esta página não sabe descrever."
    assert page_texts.warning_name(pt, "not_square") == "não quadrada"
    assert page_texts.actor_name(pt, "command line") == "linha de comando"
    assert page_texts.actor_name(pt, "command line (ana)") == "linha de comando (ana)"
    # A person who happens to be called so keeps their name.
    assert page_texts.actor_name(pt, "anonymous", actor_id=7) == "anonymous"


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


# --- no English on a Portuguese page (over HTTP, real database) ---------------------------------

PT = {"Accept-Language": "pt-BR,pt;q=0.9"}


def _english_sentences() -> set[str]:
    """English sentences a Portuguese page must never show: every catalogued text that
    Portuguese words differently (templates and page_texts), and every fixed error message
    the code base raises."""
    sentences = set()
    for message in _catalogue("pt_BR"):
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        string = message.string[0] if isinstance(message.string, tuple) else message.string
        if msgid and string != msgid and len(msgid.split()) >= 3 and "%(" not in msgid \
                and "{" not in msgid:
            sentences.add(msgid)
    sentences |= {m for m in _all_literal_strings()
                  if len(m.split()) >= 4 and m.endswith(".") and m[0].isupper()
                  and "%" not in m and "{" not in m}
    return sentences


def _text(html: str) -> str:
    """What a person reads: the HTML without scripts' data, tags and attributes."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _english_on(html: str, sentences: set[str]) -> list[str]:
    text = _text(html)
    return sorted(s for s in sentences if s in text)


async def _session(client, role: str, login_as) -> str:
    await login_as(role)
    email = "admin@example.com" if role == "admin" else f"{role}@example.com"
    client.session.cookie_jar.clear()
    response = await client.post("/login", data={"email": email, "password": PASSWORD},
                                 allow_redirects=False)
    assert response.status == 303
    page = await client.get("/admin", headers=PT)
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', await page.text())[1]


async def test_portuguese_pages_show_no_english_sentence(client, login_as, make_image, conn):
    sentences = _english_sentences()
    assert "A rejection needs a reason." in sentences  # the guard knows the service's words
    assert len(sentences) > 150
    # A landscape photo below the zoom size: two findings; one rejected with a reason.
    wide = await make_image("TEA-201", photo=make_photo(7, 900, 600))
    other = await make_image("TEA-202")
    await accounts.create_user(conn, email="ops@example.com", name="Ops", role="viewer",
                               password=PASSWORD)
    token = await _session(client, "admin", login_as)
    pages = {}
    # A refused form: the reason is missing.
    response = await client.post(f"/admin/review/{wide['id']}", headers=PT,
                                 data={"csrf_token": token, "action": "reject", "reason": ""})
    assert response.status == 422
    pages["refused review"] = html = await response.text()
    assert "Para reprovar, informe o motivo." in html
    response = await client.post(f"/admin/review/{other['id']}", headers=PT,
                                 data={"csrf_token": token, "action": "reject",
                                       "reason": "Fundo cinza"})
    assert response.status == 200
    # The photo page: findings in sentences (no code chips), its status in the singular,
    # its history in words.
    pages["photo"] = html = await (await client.get(f"/admin/images/{other['id']}",
                                                    headers=PT)).text()
    assert "reprovada" in _text(html) and "reprovadas" not in _text(html)
    assert "(status: pendente → reprovada)" in _text(html)
    pages["wide photo"] = html = await (await client.get(f"/admin/images/{wide['id']}",
                                                         headers=PT)).text()
    assert "A imagem tem 900 × 600 pixels: não é quadrada." in html
    assert "not_square" not in _text(html) and "not square" not in html
    # Error pages: a missing photo, a missing page, a bad filter.
    response = await client.get("/admin/images/999999", headers=PT)
    assert response.status == 404
    pages["404 photo"] = html = await response.text()
    assert "Não existe foto com este número." in html
    response = await client.get("/admin/library?since=yesterday", headers=PT)
    assert response.status == 422
    pages["bad filter"] = html = await response.text()
    assert "Alguns valores não são aceitáveis." in html and "desde" in _text(html)
    response = await client.post(f"/admin/images/{wide['id']}/edit", headers=PT,
                                 data={"csrf_token": token, "code": "A B", "position": "1"})
    assert response.status == 422
    pages["refused edit"] = await response.text()
    # The audit trail: people and batches in words, details as labelled values.
    pages["audit"] = html = await (await client.get("/admin/audit", headers=PT)).text()
    text = _text(html)
    assert "linha de comando" in text and "command line" not in text
    assert "user:" not in text and "batch:" not in text and '"code"' not in html
    assert "Ops" in text and "ops@example.com" in text
    # Details: labels and values in words (the import's batch, the review's note).
    assert "arquivos aceitos" in text and "arquivos enviados" in text
    assert "batch_id" not in text and "sha256" not in text and "upload" not in text
    pages["dashboard"] = await (await client.get("/admin", headers=PT)).text()
    for name in ("library", "import", "export", "users", "review", "channels"):
        pages[name] = await (await client.get(f"/admin/{name}", headers=PT)).text()
    for name, html in pages.items():
        assert '<html lang="pt-BR">' in html, name
        assert _english_on(html, sentences) == [], name


async def test_the_guard_sees_an_english_sentence():
    """The check above would fail if a page let an English message through."""
    sentences = _english_sentences()
    page = "<p class='form-error'>A rejection needs a reason.</p>"
    assert _english_on(page, sentences) == ["A rejection needs a reason."]
    assert _english_on("<p>Para reprovar, informe o motivo.</p>", sentences) == []


async def test_import_page_carries_its_sentences_in_portuguese(client, login_as):
    await _session(client, "importer", login_as)
    html = await (await client.get("/admin/import", headers=PT)).text()
    match = re.search(r'data-errors="([^"]*)"', html)
    errors = json.loads(htmllib.unescape(match[1]))
    assert errors["too_small"].startswith("A imagem tem %(width)s × %(height)s pixels")
    assert errors["*"] == "Alguns valores não são aceitáveis."
    warnings = json.loads(htmllib.unescape(re.search(r'data-warnings="([^"]*)"', html)[1]))
    assert warnings["not_square"] == "A imagem tem %(width)s × %(height)s pixels: não é quadrada."
    assert 'data-filename-pattern="' in html
    # English pages show the API's own sentences: no table to carry.
    english = await (await client.get("/admin/import", headers={"Accept-Language": "en"})).text()
    assert 'data-errors="{}"' in english
