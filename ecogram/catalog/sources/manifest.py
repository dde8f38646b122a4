"""CSV manifests: rows naming a file (in the archive or next to the manifest) or a URL."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ecogram.catalog.sources.archive import ZipArchive
from ecogram.catalog.sources.fields import Fields, ImportItem, parse_fields
from ecogram.catalog.sources.files import file_item
from ecogram.errors import AppError

MANIFEST_COLUMNS = ("code", "product", "file", "url", "position", "alt")


@dataclass
class ManifestRow:
    line: int
    file: str | None
    url: str | None
    fields: Fields | None
    error: AppError | None = None

    @property
    def name(self) -> str:
        return self.file or self.url or f"line {self.line}"


def parse_manifest(data: bytes, max_rows: int) -> list[ManifestRow]:
    """Rows of a CSV manifest: UTF-8 with or without BOM, comma- or semicolon-separated.

    Columns (header row, any order, case-insensitive): ``code``, ``product``, ``file`` or
    ``url``, ``position``, ``alt``. A bad manifest is refused whole (422); a bad row becomes a
    rejected item and the other rows still import.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AppError(422, "invalid_manifest", "The manifest is not UTF-8 text.") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise AppError(422, "invalid_manifest", "The manifest is empty.")
        columns = [h.strip().lower() for h in header]
        if "file" not in columns and "url" not in columns:
            raise AppError(
                422,
                "invalid_manifest",
                "The manifest needs a header row with a 'file' or 'url' column "
                f"(columns: {', '.join(MANIFEST_COLUMNS)}).",
                {"columns": columns},
            )
        rows: list[ManifestRow] = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue  # blank lines
            if len(rows) >= max_rows:
                raise AppError(
                    413, "too_many_rows", f"The manifest has more than {max_rows} rows.",
                    {"max_rows": max_rows},
                )
            rows.append(_manifest_row(reader.line_num, dict(zip(columns, values, strict=False))))
    except csv.Error:
        raise AppError(422, "invalid_manifest", "The manifest is not valid CSV.") from None
    return rows


def _manifest_row(line: int, cells: dict[str, str]) -> ManifestRow:
    file = (cells.get("file") or "").strip() or None
    url = (cells.get("url") or "").strip() or None
    try:
        fields = parse_fields(cells)  # type: ignore[arg-type]
    except AppError as error:
        error.details["line"] = line
        return ManifestRow(line, file, url, None, error)
    if file is None and url is None:
        error = AppError(422, "missing_file", "The row names neither a file nor a URL.",
                         {"line": line})
        return ManifestRow(line, file, url, fields, error)
    return ManifestRow(line, file, url, fields)


def manifest_items(
    rows: list[ManifestRow],
    archive: ZipArchive | None,
    folder: Path | None,
    limit: int,
) -> tuple[list[ImportItem], set[str]]:
    """Items for manifest rows; also the archive members the rows used.

    ``file`` names a member of ``archive`` (uploads) or a path relative to ``folder`` (a CSV
    given to the CLI, which reads the operator's own disk). ``url`` rows are fetched later.
    """
    items: list[ImportItem] = []
    used: set[str] = set()
    for row in rows:
        if row.error is not None:
            items.append(ImportItem(filename=row.name, error=row.error))
            continue
        assert row.fields is not None
        if row.file is None:
            name = PurePosixPath(urlsplit(row.url or "").path).name or (row.url or "url")
            items.append(row.fields.apply(ImportItem(filename=name, url=row.url)))
            continue
        item: ImportItem | None = None
        if archive is not None:
            info = archive.find(row.file)
            if info is not None:
                used.add(info.filename)
                item = archive.item(info)
        elif folder is not None:
            path = folder / row.file
            if path.is_file():
                item = file_item(path, limit, row.file)
        if item is None:
            where = ("in the archive" if archive is not None
                     else "next to the manifest" if folder is not None
                     else "anywhere: no archive was uploaded with the manifest")
            item = ImportItem(
                filename=row.file,
                error=AppError(422, "file_not_found", f"The file '{row.file}' is not {where}.",
                               {"line": row.line, "file": row.file}),
            )
        items.append(row.fields.apply(item))
    return items, used
