"""Where photos come from: uploads, ZIP archives, CSV manifests, folders and URLs.

Every source is turned into a list of ``ImportItem``: a file name, how to get its bytes (a
blocking ``load`` run in a thread, or a ``url`` fetched with care) and the fields given with it.
Nothing here trusts what a file says about itself: ZIP members are read in chunks and stopped
at the limits whatever their declared size, manifests are parsed defensively, URLs are resolved
by us and refused when they point inside the network.

One idea a module: ``fields`` (the item and its fields), ``files`` (files on disk), ``archive``
(ZIP), ``manifest`` (CSV), ``fetch`` (URLs, the SSRF guard), and ``limits`` which they share.
The names callers use are re-exported here.
"""

from ecogram.catalog.sources.archive import ZipArchive, unsafe_member_name
from ecogram.catalog.sources.fetch import MAX_REDIRECTS, UrlFetcher, public_address
from ecogram.catalog.sources.fields import (
    CODE_RE,
    MAX_ALT,
    MAX_POSITION,
    MAX_PRODUCT,
    Fields,
    ImportItem,
    code_from_filename,
    invalid_field,
    parse_fields,
)
from ecogram.catalog.sources.files import (
    IMAGE_SUFFIXES,
    JUNK_NAMES,
    file_item,
    is_junk,
    read_limited,
    walk_folder,
)
from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.catalog.sources.manifest import (
    MANIFEST_COLUMNS,
    ManifestRow,
    manifest_items,
    parse_manifest,
)

__all__ = [
    "CHUNK", "CODE_RE", "IMAGE_SUFFIXES", "JUNK_NAMES", "MANIFEST_COLUMNS", "MAX_ALT",
    "MAX_POSITION", "MAX_PRODUCT", "MAX_REDIRECTS", "Fields", "ImportItem", "ManifestRow",
    "UrlFetcher", "ZipArchive", "code_from_filename", "file_item", "invalid_field", "is_junk",
    "manifest_items", "parse_fields", "parse_manifest", "public_address", "read_limited",
    "too_large", "unsafe_member_name", "walk_folder",
]
