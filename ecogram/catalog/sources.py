"""Where photos come from: uploads, ZIP archives, CSV manifests, folders and URLs.

Every source is turned into a list of ``ImportItem``: a file name, how to get its bytes (a
blocking ``load`` run in a thread, or a ``url`` fetched with care) and the fields given with it.
Nothing here trusts what a file says about itself: ZIP members are read in chunks and stopped
at the limits whatever their declared size, manifests are parsed defensively, URLs are resolved
by us and refused when they point inside the network.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import os
import re
import socket
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ecogram.errors import AppError

CHUNK = 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".avif", ".gif", ".tif", ".tiff",
                  ".heic", ".heif"}
# Files that operating systems and archivers leave next to photos: never worth a report line.
JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
MAX_REDIRECTS = 5
MANIFEST_COLUMNS = ("code", "product", "file", "url", "position", "alt")
MAX_POSITION = 10_000
MAX_PRODUCT = 500
MAX_ALT = 1000
# A product code becomes part of /img/{code}/{position}: no slash, no URL syntax, no blanks,
# no control characters (PostgreSQL text cannot even hold NUL).
CODE_RE = re.compile(r"[^\s/\\?#%\x00-\x1f\x7f-\x9f]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass
class ImportItem:
    """One file to import, before its bytes are read."""

    filename: str
    load: Callable[[], bytes] | None = None  # blocking: called in a worker thread
    url: str | None = None
    code: str | None = None
    product: str | None = None
    position: int | None = None
    alt: str | None = None
    error: AppError | None = None  # refused before any byte is read (unsafe path, bad row)


@dataclass(frozen=True)
class Fields:
    """The fields that may come with files: a request's form fields, a manifest row."""

    code: str | None = None
    product: str | None = None
    position: int | None = None
    alt: str | None = None

    def apply(self, item: ImportItem) -> ImportItem:
        return replace(
            item,
            code=self.code if self.code is not None else item.code,
            product=self.product if self.product is not None else item.product,
            position=self.position if self.position is not None else item.position,
            alt=self.alt if self.alt is not None else item.alt,
        )


def invalid_field(name: str, message: str) -> AppError:
    return AppError(422, "invalid_fields", message, {"field": name})


def parse_fields(raw: dict[str, str | None]) -> Fields:
    """Validate the optional fields (``code``, ``product``, ``position``, ``alt``); 422 if bad.

    Empty values count as absent, so a manifest cell left blank falls back to the defaults.
    """
    def text(name: str) -> str | None:
        value = raw.get(name)
        value = value.strip() if value is not None else None
        return value or None

    code = text("code")
    if code is not None and not CODE_RE.fullmatch(code):
        raise invalid_field("code", "A product code is 1 to 100 characters without spaces, "
                            "slashes, '?', '#', '%' or control characters.")
    for name in ("product", "alt"):
        value = raw.get(name)
        if value is not None and _CONTROL.search(value):
            raise invalid_field(name, f"The {name} text contains control characters.")
    product = text("product")
    if product is not None and len(product) > MAX_PRODUCT:
        raise invalid_field("product", f"The product name is longer than {MAX_PRODUCT} "
                            "characters.")
    alt = text("alt")
    if alt is not None and len(alt) > MAX_ALT:
        raise invalid_field("alt", f"The alt text is longer than {MAX_ALT} characters.")
    position = None
    raw_position = text("position")
    if raw_position is not None:
        if not raw_position.isdecimal() or not 1 <= int(raw_position) <= MAX_POSITION:
            raise invalid_field("position", f"The position must be a whole number from 1 to "
                                f"{MAX_POSITION}.")
        position = int(raw_position)
    return Fields(code, product, position, alt)


def code_from_filename(filename: str, pattern: str) -> tuple[str, int | None]:
    """Code and position from a file name (``SKU-123_2.jpg`` → ``("SKU-123", 2)``).

    ``pattern`` (ECOGRAM_FILENAME_PATTERN) runs on the base name without its extension and has
    a group ``code`` and optionally ``position``. Raises 422 ``no_code`` when it does not match
    or yields an unusable code.
    """
    stem = PurePosixPath(filename.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    match = re.fullmatch(pattern, stem.strip())
    code = (match.group("code") or "").strip() if match else ""
    if not CODE_RE.fullmatch(code):
        raise AppError(
            422,
            "no_code",
            "No product code was given and none could be read from the file name "
            f"'{PurePosixPath(filename).name}'; name files like SKU-123_2.jpg or give a code.",
            {"filename": filename},
        )
    position = None
    if match and "position" in match.groupdict() and match.group("position"):
        position = int(match.group("position"))
        if not 1 <= position <= MAX_POSITION:
            position = None
    return code, position


def too_large(size: int, limit: int, code: str = "file_too_large", what: str = "file") -> AppError:
    return AppError(
        413,
        code,
        f"The {what} is larger than the limit of {limit / 1e6:.0f} MB.",
        {"size_at_least": size, "max_bytes": limit},
    )


# --- files on disk ------------------------------------------------------------------------------

def read_limited(stream: io.BufferedIOBase, limit: int) -> bytes:
    """Read at most ``limit`` bytes in chunks; 413 as soon as there is more."""
    parts = []
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise too_large(total, limit)
        parts.append(chunk)
    return b"".join(parts)


def file_item(path: Path, limit: int, display: str | None = None) -> ImportItem:
    """A file on disk (an upload's temporary file, or a path given to the CLI)."""
    def load() -> bytes:
        try:
            with path.open("rb") as handle:
                return read_limited(handle, limit)
        except OSError:
            raise AppError(422, "unreadable_file", "The file could not be read.") from None

    return ImportItem(filename=display or path.name, load=load)


def is_junk(name: str) -> bool:
    parts = [p for p in re.split(r"[/\\]", name) if p]
    if not parts:
        return True
    base = parts[-1].lower()
    return (
        any(p.lower() == "__macosx" for p in parts)
        or base in JUNK_NAMES
        or base.startswith("._")
    )


def walk_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted), and the other files that were skipped."""
    images: list[Path] = []
    skipped: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(files):
            path = Path(root) / name
            if is_junk(name) or name.startswith("."):
                continue
            (images if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    return images, skipped


# --- ZIP archives -------------------------------------------------------------------------------

def unsafe_member_name(name: str) -> bool:
    """Absolute paths, drive letters and any ``..`` component (zip-slip)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


class ZipArchive:
    """A ZIP read member by member, with limits that do not trust the declared sizes.

    Members are inflated in 1 MB chunks; a member stops at ``max_member`` bytes (413 for it) and
    the archive stops at ``max_total`` inflated bytes in all (413 for the member that crossed it
    and every member after it). Reads may run in several threads: zipfile serialises access to
    the underlying file, and the running total is kept under a lock.
    """

    def __init__(self, path: Path, *, max_member: int, max_total: int, max_members: int) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            with path.open("rb") as handle:
                magic = handle.read(2)
            if magic != b"PK":
                raise AppError(415, "unsupported_type", "The archive is not a ZIP file.") \
                    from None
            raise AppError(422, "invalid_archive", "The ZIP file is damaged and cannot be "
                           "read.") from None
        infos = self._zip.infolist()
        if len(infos) > max_members:
            self._zip.close()
            raise AppError(
                413,
                "too_many_members",
                f"The archive holds {len(infos)} entries; the limit is {max_members}.",
                {"members": len(infos), "max_members": max_members},
            )
        self._infos = infos
        self._max_member = max_member
        self._max_total = max_total
        self._inflated = 0
        self._exhausted = False
        self._lock = threading.Lock()

    def close(self) -> None:
        self._zip.close()

    def members(self) -> list[zipfile.ZipInfo]:
        """Entries worth a report line: not directories, not archiver or OS leftovers."""
        return [i for i in self._infos if not i.is_dir() and not is_junk(i.filename)]

    def find(self, name: str) -> zipfile.ZipInfo | None:
        """A member by its path in the archive (``./`` and backslashes tolerated), else by its
        base name when exactly one member has it."""
        wanted = name.strip().replace("\\", "/").removeprefix("./")
        members = self.members()
        for info in members:
            if info.filename.replace("\\", "/").removeprefix("./") == wanted:
                return info
        base = PurePosixPath(wanted).name
        named = [i for i in members if PurePosixPath(i.filename.replace("\\", "/")).name == base]
        return named[0] if len(named) == 1 else None

    def item(self, info: zipfile.ZipInfo) -> ImportItem:
        if unsafe_member_name(info.filename):
            return ImportItem(
                filename=info.filename,
                error=AppError(
                    422,
                    "unsafe_path",
                    "The archive entry has an absolute path or '..' in its name and was "
                    "not read.",
                    {"member": info.filename},
                ),
            )
        return ImportItem(filename=info.filename, load=lambda: self.read(info))

    def read(self, info: zipfile.ZipInfo) -> bytes:
        parts = []
        size = 0
        try:
            with self._zip.open(info) as member:
                while True:
                    with self._lock:
                        if self._exhausted:
                            raise self._over_total()
                    chunk = member.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    with self._lock:
                        self._inflated += len(chunk)
                        if self._inflated > self._max_total:
                            self._exhausted = True
                            raise self._over_total()
                    if size > self._max_member:
                        raise too_large(size, self._max_member)
                    parts.append(chunk)
        except RuntimeError:  # zipfile's "encrypted, password required"
            raise AppError(422, "encrypted_member", "The archive entry is encrypted.") from None
        except NotImplementedError:
            raise AppError(
                422, "damaged_member", "The archive entry uses a compression we cannot read."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise AppError(
                422, "damaged_member", "The archive entry is damaged and could not be read."
            ) from None
        return b"".join(parts)

    def _over_total(self) -> AppError:
        return too_large(self._inflated, self._max_total, "archive_too_large",
                         "archive's inflated content")


# --- CSV manifests ------------------------------------------------------------------------------

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


# --- URLs ---------------------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def public_address(ip: IPAddress) -> bool:
    """True for addresses on the public internet: not loopback, private, link-local,
    multicast, reserved or unspecified (IPv4-mapped IPv6 judged as the IPv4 it carries)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _blocked(host: str) -> AppError:
    return AppError(
        422,
        "private_address",
        "The URL points to a private, loopback or link-local address, which imports may not "
        "reach.",
        {"host": host},
    )


class GuardedResolver(AbstractResolver):
    """Resolves with the system resolver, then drops the addresses ``allowed`` refuses.

    aiohttp connects to the address returned here, so the address checked is the address used:
    a DNS answer that changes between check and connection (rebinding) cannot slip through.
    """

    def __init__(self, allowed: Callable[[IPAddress], bool]) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allowed = allowed
        self.refused: str | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = [a for a in answers if self._allowed(ipaddress.ip_address(a["host"]))]
        if not kept:
            self.refused = host
            raise OSError(f"{host} resolves only to refused addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class UrlFetcher:
    """Fetches manifest URLs: http(s) only, public addresses only (unless allowed), redirects
    followed by hand and re-checked (at most 5), size and time limited.

    The content type is whatever the bytes say later; response headers are not trusted.
    """

    max_bytes: int
    timeout: float
    allow_private: bool = False
    allowed: Callable[[IPAddress], bool] | None = None  # overrides the address policy (tests)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _resolver: GuardedResolver | None = field(default=None, init=False, repr=False)

    def _policy(self) -> Callable[[IPAddress], bool]:
        if self.allowed is not None:
            return self.allowed
        return (lambda ip: True) if self.allow_private else public_address

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check_url(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise AppError(422, "invalid_url", "The URL is not valid.", {"url": url}) from None
        if parts.scheme.lower() not in ("http", "https"):
            raise AppError(422, "unsupported_url", "Only http and https URLs can be imported.",
                           {"url": url})
        if not host:
            raise AppError(422, "invalid_url", "The URL has no host.", {"url": url})
        # aiohttp skips the resolver for literal addresses: check those here.
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return host
        if not self._policy()(literal):
            raise _blocked(host)
        return host

    async def fetch(self, url: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise AppError(422, "fetch_timeout", f"The URL did not answer within "
                           f"{self.timeout:g} seconds.", {"url": url}) from None

    async def _fetch(self, url: str) -> bytes:
        if self._session is None:
            self._resolver = GuardedResolver(self._policy())
            # No proxies from the environment (they would connect on our behalf, unchecked),
            # no cookies kept between fetches.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=self._resolver, limit=4),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        assert self._resolver is not None
        for _ in range(MAX_REDIRECTS + 1):
            host = self._check_url(url)
            self._resolver.refused = None
            try:
                async with self._session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location")
                        if not location:
                            raise AppError(422, "fetch_failed", "The URL redirects nowhere.",
                                           {"url": url})
                        url = urljoin(url, location)
                        continue
                    if response.status != 200:
                        raise AppError(
                            422, "fetch_failed",
                            f"The URL answered with HTTP status {response.status}.",
                            {"url": url, "status": response.status},
                        )
                    return await self._read(response)
            except aiohttp.ClientError:
                if self._resolver.refused is not None:
                    raise _blocked(host) from None
                raise AppError(422, "fetch_failed", "The URL could not be fetched.",
                               {"url": url}) from None
        raise AppError(422, "too_many_redirects",
                       f"The URL redirects more than {MAX_REDIRECTS} times.", {"url": url})

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise too_large(declared, self.max_bytes)
        parts = []
        total = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            total += len(chunk)
            if total > self.max_bytes:
                raise too_large(total, self.max_bytes)
            parts.append(chunk)
        return b"".join(parts)

