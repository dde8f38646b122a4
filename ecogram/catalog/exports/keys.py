"""Product keys a shop identifies products by (Shopify handles, SKUs), one per code, never shared.

Two codes that are one product to the shop (``COLL-1``, ``coll_1`` and ``Coll–1`` are all Shopify's
``coll-1``; WooCommerce and Magento compare SKUs without case or accents) would merge on
import. ``ProductKeys`` reads every live code first and gives each clashing code after the first
a suffix, the same in every export.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecogram import db
from ecogram.catalog.exports.walk import Connect

CODES_BATCH = 5000  # live codes per read
MAX_LISTED = 1000  # renamed keys listed in an audit entry (the count is always there)


def _unaccented(text: str) -> str:
    """Compatibility forms and accents folded away: ``Ｃafé`` → ``Cafe``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def handle(code: str) -> str:
    """Shopify's handle: the code unaccented, lower-cased, runs of other characters as one hyphen.

    Two codes may give one handle (``COLL-1``, ``coll_1``): ``ProductKeys`` makes them unique.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", _unaccented(code).lower()).strip("-")
    # A code with no letter or digit at all still needs a stable, distinct handle.
    return slug or "product-" + hashlib.sha1(code.encode()).hexdigest()[:10]  # noqa: S324


def sku_key(code: str) -> str:
    """How WooCommerce and Magento compare SKUs (MySQL's ``_ci`` collations, Magento's
    lower-cased SKU map): without case or accents."""
    return _unaccented(code).casefold()


@dataclass
class ProductKeys:
    """The key a shop identifies a product by, one per code and never shared by two codes.

    ``natural(code)`` is the code's own key (``handle`` for Shopify; the code itself for SKUs),
    ``compare(key)`` what the shop compares (SKUs without case or accents). Every live code is
    read first (``load``); among codes whose keys compare equal, the one whose oldest photo came
    first keeps its key, the others get ``-2``, ``-3``… (the first that no code has), so the same
    code gets the same key in every export, incremental or not.
    """

    column: str
    natural: Callable[[str], str]
    compare: Callable[[str], str]
    owners: dict[str, tuple[int, str]] = field(default_factory=dict)  # compared key → code
    assigned: dict[str, str] = field(default_factory=dict)  # code → renamed key
    renamed: list[dict[str, str]] = field(default_factory=list)  # in this export
    renamed_count: int = 0

    async def load(self, connect: Connect) -> None:
        clashes: dict[str, list[tuple[int, str]]] = {}
        after = ""
        while True:
            async with connect() as conn:
                rows = [r async for r in db.queries.export_live_codes(
                    conn, after=after, rows=CODES_BATCH)]
            for row in rows:
                code, first = row["code"], (row["first_id"], row["code"])
                key = self.compare(self.natural(code))
                owner = self.owners.setdefault(key, first)
                if owner != first:
                    clashes.setdefault(key, [owner]).append(first)
            if len(rows) < CODES_BATCH:
                break
            after = rows[-1]["code"]
        for key, codes in clashes.items():
            codes.sort()
            self.owners[key] = codes[0]
            for _, code in codes[1:]:
                self._rename(code)

    def _rename(self, code: str) -> str:
        base = self.natural(code)
        suffix = 2
        while self.compare(f"{base}-{suffix}") in self.owners:
            suffix += 1
        key = f"{base}-{suffix}"
        self.owners[self.compare(key)] = (0, code)  # taken, by this code
        self.assigned[code] = key
        return key

    def of(self, code: str) -> str:
        """The code's key in this export (noting it in ``renamed`` when it is not its own)."""
        if code in self.assigned:
            key = self.assigned[code]
        else:
            key = self.natural(code)
            owner = self.owners.setdefault(self.compare(key), (0, code))
            if owner[1] == code:
                return key
            key = self._rename(code)  # a code that arrived during the export
        owner_code = self.owners[self.compare(self.natural(code))][1]
        self.renamed_count += 1
        if len(self.renamed) < MAX_LISTED:
            self.renamed.append({"code": code, "key": key, "collides_with": owner_code})
        return key

    def details(self) -> dict[str, Any]:
        return {"column": self.column, "count": self.renamed_count, "items": self.renamed}


def product_keys(fmt: str) -> ProductKeys | None:
    if fmt == "shopify":
        return ProductKeys("Handle", handle, str)
    if fmt == "woocommerce":
        return ProductKeys("SKU", str, sku_key)
    if fmt == "magento":
        return ProductKeys("sku", str, sku_key)
    return None
