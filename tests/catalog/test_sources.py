"""Sources: file-name pattern, fields, manifests, archive names, folders."""

from __future__ import annotations

import pytest

from ecogram.catalog.sources import (
    ZipArchive,
    code_from_filename,
    is_junk,
    parse_fields,
    parse_manifest,
    unsafe_member_name,
    walk_folder,
)
from ecogram.errors import AppError
from ecogram.settings import DEFAULT_FILENAME_PATTERN
from tests.catalog.photos import make_zip


@pytest.mark.parametrize("name, expected", [
    ("SKU-123.jpg", ("SKU-123", None)),
    ("SKU-123_2.jpg", ("SKU-123", 2)),
    ("SKU-123-2.png", ("SKU-123", 2)),
    ("photos/sub/SKU-123_12.JPG", ("SKU-123", 12)),
    ("ABC-DEF.jpg", ("ABC-DEF", None)),  # '-' after a letter is part of the code
    ("4006381333931.webp", ("4006381333931", None)),
    ("shoe_red_3.jpeg", ("shoe_red", 3)),
    ("no-extension", ("no-extension", None)),
    ("a\\b\\SKU-7_1.jpg", ("SKU-7", 1)),
])
def test_default_file_name_pattern(name, expected):
    assert code_from_filename(name, DEFAULT_FILENAME_PATTERN) == expected


def test_custom_pattern_and_unusable_names():
    pattern = r"^(?P<code>[A-Z]+\d+)(?:\.(?P<position>\d+))?$"
    assert code_from_filename("AB12.3.jpg", pattern) == ("AB12", 3)
    for name in ("lowercase.jpg", "has space.jpg"):
        with pytest.raises(AppError) as raised:
            code_from_filename(name, pattern)
        assert (raised.value.status, raised.value.code) == (422, "no_code")
    with pytest.raises(AppError):
        code_from_filename("what?.jpg", DEFAULT_FILENAME_PATTERN)


def test_parse_fields():
    fields = parse_fields({"code": " SKU-1 ", "product": "Mug", "position": "3", "alt": ""})
    assert (fields.code, fields.product, fields.position, fields.alt) == ("SKU-1", "Mug", 3, None)
    for raw in ({"position": "-1"}, {"position": "1.5"}, {"position": "100000"},
                {"code": "a#b"}, {"code": "x" * 101}, {"product": "p" * 501}):
        with pytest.raises(AppError) as raised:
            parse_fields(raw)
        assert raised.value.status == 422 and raised.value.details["field"] in raw


@pytest.mark.parametrize("raw", [
    {"code": "A\x00B"}, {"code": "A\x7fB"}, {"code": "A\x1bB"},
    {"product": "Mug\x00"}, {"alt": "side\x00view"}, {"product": "tab\x08"},
])
def test_fields_with_control_characters_are_refused(raw):
    # PostgreSQL text cannot hold NUL, and no code or name needs a control character: a 422
    # naming the field, never a 500 from the database (schemathesis found the NUL one).
    with pytest.raises(AppError) as raised:
        parse_fields(raw)
    assert raised.value.status == 422 and raised.value.details["field"] in raw


def test_a_file_name_with_control_characters_gives_no_code():
    with pytest.raises(AppError) as raised:
        code_from_filename("SKU\x00-1.jpg", DEFAULT_FILENAME_PATTERN)
    assert (raised.value.status, raised.value.code) == (422, "no_code")


@pytest.mark.parametrize("text", [
    "code,product,file,position,alt\r\nA-1,Mug,a.jpg,2,Side\r\n",
    "\ufeffCode;Product;File;Position;Alt\nA-1;Mug;a.jpg;2;Side\n",
    "file;code;product;position;alt\n\na.jpg;A-1;Mug;2;Side\n",
])
def test_manifest_bom_delimiters_and_column_order(text):
    (row,) = parse_manifest(text.encode("utf-8"), 100)
    assert row.error is None and row.file == "a.jpg" and row.url is None
    assert (row.fields.code, row.fields.product, row.fields.position, row.fields.alt) == (
        "A-1", "Mug", 2, "Side")


def test_manifest_bad_rows_and_bad_files():
    rows = parse_manifest(b"code,file,position\nA,a.jpg,zero\nB,,\n", 100)
    assert [r.error.code for r in rows] == ["invalid_fields", "missing_file"]
    assert rows[0].error.details["line"] == 2
    for data, code in ((b"\xff\xfe", "invalid_manifest"), (b"", "invalid_manifest"),
                       (b"code,product\n", "invalid_manifest")):
        with pytest.raises(AppError) as raised:
            parse_manifest(data, 100)
        assert raised.value.code == code
    with pytest.raises(AppError) as raised:
        parse_manifest(b"file\n" + b"a.jpg\n" * 11, 10)
    assert (raised.value.status, raised.value.code) == (413, "too_many_rows")


@pytest.mark.parametrize("name, unsafe", [
    ("../evil.jpg", True), ("a/../../evil.jpg", True), ("/etc/passwd", True),
    ("\\windows\\x.jpg", True), ("C:\\x.jpg", True), ("a\\..\\b.jpg", True),
    ("photos/a.jpg", False), ("a..b.jpg", False), ("..hidden.jpg", False),
])
def test_unsafe_member_names(name, unsafe):
    assert unsafe_member_name(name) is unsafe


def test_junk_and_folders(tmp_path):
    assert is_junk("__MACOSX/photos/._a.jpg") and is_junk(".DS_Store")
    assert is_junk("x/Thumbs.db") and not is_junk("photos/a.jpg")
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("b/2.jpg", "1.PNG", "notes.txt", ".git/x.jpg", "._1.jpg"):
        (tmp_path / name).write_bytes(b"x")
    images, skipped = walk_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["1.PNG", "b/2.jpg"]
    assert [p.name for p in skipped] == ["notes.txt"]


def test_archive_members_and_lookup(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(make_zip({"dir/": b"", "dir/a.jpg": b"1", "__MACOSX/dir/._a.jpg": b"",
                               "b.jpg": b"22"}))
    archive = ZipArchive(path, max_member=10, max_total=100, max_members=10)
    try:
        assert [i.filename for i in archive.members()] == ["dir/a.jpg", "b.jpg"]
        assert archive.find("./dir/a.jpg").filename == "dir/a.jpg"
        assert archive.find("a.jpg").filename == "dir/a.jpg"  # unique base name
        assert archive.find("c.jpg") is None
        assert archive.read(archive.find("b.jpg")) == b"22"
    finally:
        archive.close()
