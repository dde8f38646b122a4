"""Exports per sales channel (issue 13): VTEX, Google Merchant Center, Mercado Livre, Nuvemshop,
and the renditions CSV of any channel. Decisions are in docs/channels.md, "Exports".

They walk the same keyset batches on short loans as the shop exports (``walk``); each batch is
read in one REPEATABLE READ transaction together with what the channel needs about it, so all
of it is one snapshot:

- **readiness** per product and photo, from ``ecogram.catalog.channels`` (the same SQL as
  ``/api/v1/channels/{id}/readiness``, for the batch's codes). By default only ready products are
  exported; ``include_not_ready`` adds the rest with a ``ready`` flag and the codes of the
  findings that keep them from being ready (the ones the rendition cannot fix).
- the photos' **geometry** (``image_geometry``), from which the rendition's width and height are
  planned without pixels (``ecogram.imaging.product.plan_rendition``). A rendition's bytes are
  only known once it is rendered; exports never render (at ~12 renditions per CPU second a
  100,000-photo catalogue would take hours and compete with ``/img``), so ``bytes`` is empty.
- the products' **own ids on the channel** (``channel_product_ids``: the VTEX SKU id, the Mercado
  Livre item id, the Nuvemshop product id, a Merchant Center id other than the code).

Image URLs are the channel's rendition, ``rendition_url``:
``{public_url}/img/{code}/{position}/{channel}.{ext}?v={version}``. A product gets at most the
channel's ``max_photos`` (and Google at most 1 + 10), in position order.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db
from ecogram.catalog import channels
from ecogram.catalog.exports.walk import Connect, Walk
from ecogram.catalog.images import STATUSES
from ecogram.channels import Profile
from ecogram.errors import invalid
from ecogram.imaging.product import Box, Geometry, plan_rendition

CHANNEL_FORMATS = ("vtex", "google", "mercadolivre", "nuvemshop", "renditions")
CONTENT_TYPES = {
    "vtex": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "google": "text/tab-separated-values; charset=utf-8",
    "mercadolivre": "application/x-ndjson",
    "nuvemshop": "application/x-ndjson",
    "renditions": "text/csv; charset=utf-8",
}
EXTENSIONS = {"vtex": "xlsx", "google": "tsv", "mercadolivre": "jsonl", "nuvemshop": "jsonl",
              "renditions": "csv"}
RENDITION_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
GOOGLE_ADDITIONAL = 10  # Merchant Center takes up to 10 additional_image_link
MAX_CODES = 1000


def rendition_url(code: str, position: int, version: int, profile: Profile,
                  public_url: str) -> str:
    """The address ``/img`` serves the channel's rendition of a photo at:
    ``{public_url}/img/{code}/{position}/{channel}.{ext}?v={version}`` (ext from the channel's
    output format: jpeg → jpg, png, webp). The version makes it safe to cache for ever."""
    ext = RENDITION_EXTENSIONS[profile.output]
    return (f"{public_url}/img/{urllib.parse.quote(code, safe='')}/{position}/"
            f"{profile.id}.{ext}?v={version}")


def photo_cap(fmt: str, profile: Profile) -> int | None:
    """How many photos of a product the export gives the channel (None: all)."""
    cap = profile.max_photos
    if fmt == "google":
        cap = min(cap or GOOGLE_ADDITIONAL + 1, GOOGLE_ADDITIONAL + 1)
    return cap


def blocking(mask: int, codes: tuple[str, ...] | None = None) -> list[str]:
    """The codes of the findings in ``mask`` the rendition cannot fix (what keeps a product
    from being ready), in ``channels.FINDINGS`` order."""
    return [f.code for f in channels.FINDINGS
            if mask & f.bit and not f.fixable and (codes is None or f.code in codes)]


@dataclass(frozen=True)
class ChannelExportQuery:
    format: str
    profile: Profile
    codes: tuple[str, ...] | None = None
    since: dt.datetime | None = None
    status: str = "approved"
    include_not_ready: bool = False

    @classmethod
    def make(cls, fmt: str, profiles: dict[str, Profile], *, channel: str | None = None,
             codes: tuple[str, ...] | None = None, since: dt.datetime | None = None,
             status: str | None = None, include_not_ready: bool = False) -> ChannelExportQuery:
        """The query, or 422 ``invalid_fields`` naming every field that is not acceptable.
        ``channel`` is the renditions CSV's channel; the four channel formats are their own."""
        problems: dict[str, str] = {}
        status = status or "approved"
        profile = None
        if fmt not in CHANNEL_FORMATS:
            problems["format"] = f"one of {', '.join(CHANNEL_FORMATS)}"
        elif fmt == "renditions":
            if not channel:
                problems["channel"] = "required: the channel whose renditions to list"
            elif channel not in profiles:
                problems["channel"] = f"one of {', '.join(profiles)}"
            else:
                profile = profiles[channel]
        elif channel and channel != fmt:
            problems["channel"] = f"only for renditions (this export is {fmt}'s)"
        else:
            profile = profiles[fmt]
        if channel and "\x00" in channel:
            problems["channel"] = "no NUL characters"
        if status not in STATUSES:
            problems["status"] = f"one of {', '.join(STATUSES)}"
        if codes and len(codes) > MAX_CODES:
            problems["code"] = f"at most {MAX_CODES} codes"
        elif codes and any("\x00" in code for code in codes):
            problems["code"] = "no NUL characters"
        if problems or profile is None:
            raise invalid("Some export parameters are not acceptable.", fields=problems)
        return cls(fmt, profile, codes, since, status, include_not_ready)

    @property
    def filters(self) -> dict[str, Any]:
        return {
            "channel": self.profile.id,
            "codes": list(self.codes) if self.codes else None,
            "since": self.since.isoformat() if self.since else None,
            "status": self.status,
            "include_not_ready": self.include_not_ready,
        }

    @property
    def params(self) -> dict[str, Any]:
        """The filters as ``export-batch`` takes them."""
        return {"status": self.status, "codes": list(self.codes) if self.codes else None,
                "since": self.since}

    def filename(self, now: dt.datetime | None = None) -> str:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
        name = self.format if self.format != "renditions" else f"renditions-{self.profile.id}"
        return f"ecogram-{name}-{stamp}.{EXTENSIONS[self.format]}"


@dataclass
class Photo:
    """One exported photo of a product, with what the channel formats write about it."""

    row: asyncpg.Record
    rank: int  # 1, 2, 3… in position order among the product's exported photos
    url: str
    size: tuple[int, int] | None  # the rendition's planned width x height (None: not measured)
    findings: list[str]  # blocking findings of this photo and of its product's photo count


@dataclass
class Product:
    code: str
    name: str
    ready: bool
    findings: list[str]  # the product's blocking findings (its photos' and its own)
    external_id: str | None
    photos: list[Photo]


@dataclass
class ChannelWalk(Walk):
    """The export's batches, each read with its readiness, geometry and channel ids in one
    snapshot on the same short loan."""

    profile: Profile | None = None
    status: str = "approved"
    masks: dict[str, int] = field(default_factory=dict)  # code → product mask
    photo_masks: dict[int, int] = field(default_factory=dict)  # image id → photo mask
    mains: set[int] = field(default_factory=set)  # ids of main photos
    geometry: dict[int, Geometry] = field(default_factory=dict)
    external: dict[str, str] = field(default_factory=dict)  # code → id on the channel

    async def read(self, conn: asyncpg.Connection, after: str) -> list[asyncpg.Record]:
        assert self.profile is not None
        # The previous batch is written whole before the next is read: its facts can go.
        for facts in (self.masks, self.photo_masks, self.mains, self.geometry, self.external):
            facts.clear()
        # Readiness reads channel_products: the products changed since the last reader are
        # rebuilt (and committed) first, then the batch and its facts are one snapshot.
        await db.queries.channels_catch_up(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            batch = await super().read(conn, after)
            if not batch:
                return batch
            codes = list(dict.fromkeys(r["code"] for r in batch))
            for start in range(0, len(codes), channels.MAX_PER_PAGE):
                chunk = tuple(codes[start:start + channels.MAX_PER_PAGE])
                found = await channels.read_masks(conn, self.profile, channels.ReadinessQuery(
                    codes=chunk, status=self.status, per_page=len(chunk)))
                for item in found["items"]:
                    self.masks[item["code"]] = item["mask"]
                    for photo in item["images"]:
                        self.photo_masks[photo["id"]] = photo["mask"]
                        if photo["main"]:
                            self.mains.add(photo["id"])
            by_id = {r["id"]: r for r in batch}
            async for g in db.queries.export_channel_geometry(conn, ids=list(by_id)):
                row = by_id[g["image_id"]]
                border = g["border"].lstrip("#")
                self.geometry[g["image_id"]] = Geometry(
                    row["width"], row["height"],
                    Box(g["box_left"], g["box_top"], g["box_width"], g["box_height"]),
                    g["background"], (int(border[0:2], 16), int(border[2:4], 16),
                                      int(border[4:6], 16)),
                    g["fill"], row["width"] == row["height"])
            async for m in db.queries.export_channel_ids(conn, channel=self.profile.id,
                                                         codes=codes):
                self.external[m["code"]] = m["external_id"]
        return batch

    def size(self, row: asyncpg.Record) -> tuple[int, int] | None:
        assert self.profile is not None
        geometry = self.geometry.get(row["id"])
        if geometry is None:
            return None
        plan = plan_rendition(geometry, self.profile, main=row["id"] in self.mains)
        return plan.width, plan.height


@dataclass
class ChannelExport:
    """One channel export under way: its walk, and the ids of the photos written."""

    connect: Connect
    query: ChannelExportQuery
    public_url: str
    walk: ChannelWalk = field(init=False)
    written: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.walk = ChannelWalk(self.connect, self.query.params, profile=self.query.profile,
                                status=self.query.status)

    async def products(self) -> AsyncIterator[Product]:
        """Each product to export (ready ones only unless ``include_not_ready``), its photos
        capped at the channel's count; the photos yielded count as written."""
        profile, walk = self.query.profile, self.walk
        cap = None if self.query.format == "renditions" else photo_cap(self.query.format,
                                                                       profile)
        async for group in walk.products():
            code = group[0]["code"]
            mask = walk.masks.get(code)
            ready = mask is not None and not blocking(mask)
            if not ready and not self.query.include_not_ready:
                continue
            count_findings = blocking(mask or 0, channels.PRODUCT_CODES)
            photos = [
                Photo(row, rank,
                      rendition_url(code, row["position"], row["version"], profile,
                                    self.public_url),
                      walk.size(row),
                      blocking(walk.photo_masks.get(row["id"], 0)) + count_findings)
                for rank, row in enumerate(group[:cap], start=1)
            ]
            self.written.extend(p.row["id"] for p in photos)
            yield Product(code, next((r["product"] for r in group if r["product"]), ""),
                          ready, blocking(mask or 0), walk.external.get(code), photos)

