"""An image row as the API shows it: the record of docs/api.md, with ready-to-use ``/img`` URLs.

A pure function of the row and the public base URL, so every use case (import, review,
listing, export) renders records the same way.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from typing import Any

# Widths offered in the srcset; all are in the default ECOGRAM_ALLOWED_SIZES.
SRCSET_WIDTHS = (400, 800, 1200, 1600)


def iso(value: dt.datetime | None) -> str | None:
    """A timestamp as the API shows it (ISO 8601 with its offset), or None."""
    return value.isoformat() if value is not None else None


def image_urls(code: str, position: int, version: int, width: int, public_url: str) -> dict:
    """``src`` (the image at its own size) and a ``srcset`` of the widths it can fill.

    ``v`` is the record's version: while it matches, /img answers are immutable, and it changes
    whenever what this address serves changes, so caches never hold a stale picture.
    """
    base = f"{public_url}/img/{urllib.parse.quote(code, safe='')}/{position}"
    # Never offer widths beyond the original (/img does not enlarge); the narrowest is kept so
    # a srcset always has at least one candidate.
    widths = [w for w in SRCSET_WIDTHS if w <= width] or [SRCSET_WIDTHS[0]]
    return {
        "src": f"{base}?v={version}",
        "srcset": ", ".join(f"{base}?w={w}&v={version} {w}w" for w in widths),
    }


def image_record(row: Mapping[str, Any], public_url: str) -> dict[str, Any]:
    """The JSON record of one image (no blobs). ``row`` holds the images columns."""
    return {
        "id": row["id"],
        "code": row["code"],
        "product": row["product"],
        "position": row["position"],
        "status": row["status"],
        "filename": row["filename"],
        "format": row["format"],
        "mime": row["mime"],
        "width": row["width"],
        "height": row["height"],
        "file_size": row["file_size"],
        "sha256": row["sha256"],
        "blurhash": row["blurhash"],
        "color": row["color"],
        "has_alpha": row["has_alpha"],
        "importer": row["importer"],
        "importer_id": row["importer_id"],
        "batch_id": row["batch_id"],
        "imported_at": iso(row["imported_at"]),
        "reviewed_by": row["reviewer"],
        "reviewed_at": iso(row["reviewed_at"]),
        "review_note": row["review_note"],
        "qc": row["qc"],
        "alt": row["alt"],
        "version": row["version"],
        "updated_at": iso(row["updated_at"]),
        "urls": image_urls(
            row["code"], row["position"], row["version"], row["width"], public_url
        ),
    }
