"""Delivery: what ``/img/{code}[/{position}]`` answers, as fast as the answer allows.

The order of a request (docs/api.md is the contract):

1. parse and check the query (``imaging.options``), sizes against ECOGRAM_ALLOWED_SIZES unless
   ``s`` signs the URL — no database, no pixels;
2. resolve code/position → (image id, version, sizes) from the in-process resolution cache,
   kept exact across workers by PostgreSQL LISTEN/NOTIFY (``cache.ImageListener``);
3. negotiate the format, apply the client hints the URL leaves open (``Sec-CH-Width``,
   ``Sec-CH-DPR``, ``Save-Data``: ``options.apply_hints``, ``_hinted``), build the key
   ``id:version:options.format`` — the strong ETag too — and ``Vary`` (``options.vary``), and
   answer 304 when the client has it;
4. the variant: memory LRU → Redis → render, the last two behind a single flight per key;
   a render reads the master (or the original when the master is too small) through the
   masters cache and runs in the libvips pool under a bounded queue and a time limit.

A storefront asks the same few URLs over and over, so a request that was answered before is
replayed (``replay``): ``recent`` keeps, per (request target, Accept, client hints as sent),
what steps 1–3 concluded — the resolved image, the key, the headers — and the replay only
checks that the address still resolves to that same image version and that the variant is
still in memory. No bytes are kept there.

While the database is away, an address resolves to the last answer the database gave for it
(stale-if-error, ``known``), so what memory or Redis holds is still served; anything that
needs the database is the middleware's 503 ``unavailable``.

Cache keys carry the image version, and every change of what an address serves bumps the
version (replace, reorder) or leaves the approved set (reject, delete): old variants become
unreachable by construction. The event hooks and NOTIFY only keep memory and freshness tidy.

Channel renditions (``?preset={channel}``, ``/img/{code}/{position}/{channel}.{ext}``) are
variants like the others: the photo as ``imaging.product.render_for_channel`` makes it for one
sales channel's profile, keyed ``id:version:rendition_key`` (the key names the rendition
version and digests the profile fields the output depends on), through the same tiers, single
flight, render queue and deadline, rendered from the original. Profiles are the settings' ones
(``Settings.channel_profiles``), taken once when the application starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import email.utils
import functools
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import asyncpg
from multidict import CIMultiDict, MultiDict

from ecogram import db, storage
from ecogram.cache import (
    MISSING,
    ByteLRU,
    ImageListener,
    RedisTier,
    Resolutions,
    SingleFlight,
    Variant,
)
from ecogram.catalog import signing
from ecogram.catalog.analytics import Counts, NoCounts
from ecogram.catalog.imports import qc_limits
from ecogram.channels import Profile
from ecogram.errors import AppError
from ecogram.imaging import pipeline, product, quality
from ecogram.imaging.options import (
    KNOWN,
    LOSSY_FORMATS,
    OUTPUT_FORMATS,
    Hints,
    RenderOptions,
    apply_hints,
    negotiate,
    parse_options,
    save_data_quality,
    saves_data,
    vary,
)
from ecogram.imaging.probe import QCLimits
from ecogram.metrics import Metrics
from ecogram.redis_client import SharedRedis
from ecogram.settings import Settings

log = logging.getLogger("ecogram.delivery")

MB = 1024 * 1024
YEAR = 31_536_000
IMMUTABLE = f"public, max-age={YEAR}, immutable"
MAX_POSITION = 2_147_483_647  # images.position is an integer
MAX_CODE = 200
PARSED_MEMO = 4096  # distinct query strings whose parsed options are kept
ACCEPT_MEMO = 512  # distinct Accept headers whose negotiated format is kept
RECENT_MEMO = 4096  # distinct (request target, Accept, hints) whose answer can be replayed
KNOWN_CODES = 50_000  # codes whose last resolution is kept for when the database is away
STALE_WINDOW = 1.0  # seconds after a database failure during which resolve() asks it no more
EAGER_QUEUE = 1000  # approvals waiting for their presets; beyond, presets render on demand
_VERSION = re.compile(r"[0-9]{1,10}")
# A channel rendition's file name extensions by output format (the first is the one named in
# Content-Disposition); the path form answers only these.
EXTENSIONS = {"jpeg": ("jpg", "jpeg"), "png": ("png",), "webp": ("webp",)}
FINDINGS_HEADER = "X-Ecogram-Findings"
QUALITY_HEADER = "X-Ecogram-Quality"  # the q an /img answer was encoded at
# Work for the libvips pool: source → (result, seconds, the source used).
RenderJob = Callable[[pipeline.Source], tuple[Any, float, pipeline.Source]]
_FILENAME_SAFE = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What an address serves: one approved image at one version (no pixels)."""

    id: int
    code: str
    position: int
    version: int
    last_modified: str  # HTTP date of updated_at
    width: int  # upright size of the original
    height: int
    has_alpha: bool
    blurhash: str
    color: str
    master_width: int
    master_height: int
    # Calibrated quality of this version (docs/delivery.md): output format → {output width →
    # q}, from the same query; empty until the calibration at approval is stored.
    quality: Mapping[str, Mapping[int, int]] = field(
        default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Resolved:
        updated: dt.datetime = row["updated_at"]
        return cls(
            id=row["id"],
            code=row["code"],
            position=row["position"],
            version=row["version"],
            last_modified=email.utils.format_datetime(updated.astimezone(dt.UTC), usegmt=True),
            width=row["width"],
            height=row["height"],
            has_alpha=row["has_alpha"],
            blurhash=row["blurhash"],
            color=row["color"],
            master_width=row["master_width"],
            master_height=row["master_height"],
            quality=_quality_table(row["quality"]),
        )


class Answer(NamedTuple):
    status: int  # 200 or 304
    body: bytes
    headers: Mapping[str, str]  # may be shared between answers: copy it, never change it
    tier: str  # memory, redis, render, not_modified


@dataclass(frozen=True, slots=True)
class _Recent:
    """What a request meant when it was last answered (see the module's docstring)."""

    code: str
    position: int | None
    resolved: Resolved  # valid while the address still resolves to this very object
    key: str
    etag: str
    # Kept as CIMultiDicts: the view copies them into a response at C speed.
    headers: CIMultiDict[str]  # of a 200, Content-Type included
    not_modified: CIMultiDict[str]  # of a 304


@dataclass(frozen=True, slots=True)
class ChannelAsk:
    """A channel rendition asked for (``?preset=`` or the path form): the profile and its
    rendition keys, computed once per profile."""

    profile: Profile
    keys: tuple[str, str]  # rendition_key for a photo that is not the main one, for the main
    ext: str  # the file name extension of the channel's format


def channel_asks(profiles: Mapping[str, Profile]) -> dict[str, ChannelAsk]:
    return {
        channel: ChannelAsk(
            profile,
            (product.rendition_key(profile, main=False), product.rendition_key(profile, main=True)),
            EXTENSIONS[profile.output][0],
        )
        for channel, profile in profiles.items()
    }


def _rendition_type(rendition: product.Rendition) -> str:
    """A rendition's media type, with its findings' codes as a parameter: stored that way,
    the findings travel with the bytes through memory and Redis (``_split_type``)."""
    codes = ",".join(rendition.codes)
    return f"{rendition.content_type}; findings={codes}" if codes else rendition.content_type


def _split_type(stored: str) -> tuple[str, str]:
    content_type, _, findings = stored.partition("; findings=")
    return content_type, findings


def _disposition(code: str, position: int, channel: str, ext: str) -> str:
    """``inline; filename="{code}_{position}_{channel}.{ext}"``; a code with characters a plain
    filename cannot carry gets an ASCII stand-in and the exact name as ``filename*``."""
    name = f"{code}_{position}_{channel}.{ext}"
    if _FILENAME_SAFE.fullmatch(code):
        return f'inline; filename="{name}"'
    plain = "".join(c if _FILENAME_SAFE.fullmatch(c) else "_" for c in name)
    return (f'inline; filename="{plain}"; '
            f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")


class _Stale(Exception):
    """The image changed between resolving it and reading its bytes."""


def not_found() -> AppError:
    return AppError(404, "not_found", "There is no approved image at this address.")


def _bad(name: str, message: str, code: str = "invalid_parameter", **details: Any) -> AppError:
    return AppError(400, code, message, {"parameter": name, **details})


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def version_token(query: Mapping[str, str]) -> int | None:
    raw = query.get("v")
    if raw is None:
        return None
    if not _VERSION.fullmatch(raw):
        raise _bad("v", "Parameter 'v' must be the image's version number.")
    return int(raw)


def _memo_put(memo: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """Keep ``value`` in a bounded memo: beyond ``limit`` entries the oldest goes (dicts keep
    insertion order) — cheap, and hot keys come back at once."""
    if key not in memo and len(memo) >= limit:
        del memo[next(iter(memo))]
    memo[key] = value


def _render_timed(
    source: pipeline.Source, *, opts: RenderOptions, fmt: str, width: int, height: int,
    plan_size: tuple[int, int], decode: bool,
) -> tuple[pipeline.Rendered, float, pipeline.Source]:
    """Render (decoding a master's bytes into memory first when asked); return the source
    used, so the caller can keep the decoded master for the next cold size."""
    started = time.perf_counter()
    if decode and isinstance(source, bytes):
        source = pipeline.decode_master(source)
    rendered = pipeline.render(
        source, opts, fmt, source_width=width, source_height=height, plan_size=plan_size
    )
    return rendered, time.perf_counter() - started, source


def calibrate_timed(
    master: pipeline.Source, *, original: bytes, resolved: Resolved, formats: tuple[str, ...],
    target: float, bounds: Mapping[str, tuple[int, int]], widths: tuple[int, ...],
) -> tuple[list[quality.Calibration], float, pipeline.Source]:
    """``quality.calibrate_all`` on this version's delivered renders at ``widths`` (each from
    the source /img would use, planned on the original's size) against the original, timed;
    with the master decoded, for the renders that follow."""
    started = time.perf_counter()
    if isinstance(master, bytes):
        master = pipeline.decode_master(master)
    sources = {"master": master, "original": original}

    def render(opts: RenderOptions, fmt: str) -> bytes:
        kind, width, height = Delivery.source_for(resolved, opts)
        return pipeline.render(
            sources[kind], opts, fmt, source_width=width, source_height=height,
            plan_size=(resolved.width, resolved.height),
        ).data

    sizes = quality.views(original, render, size=(resolved.width, resolved.height),
                          widths=widths)
    found = quality.calibrate_all(sizes, formats, target=target, bounds=bounds)
    return found, time.perf_counter() - started, master


def _rendition_timed(
    source: pipeline.Source, *, profile: Profile, main: bool, limits: QCLimits
) -> tuple[product.Rendition, float, pipeline.Source]:
    """A channel rendition of the original's bytes (``product.render_for_channel``), timed."""
    started = time.perf_counter()
    assert isinstance(source, bytes)  # originals are kept as their bytes
    rendition = product.render_for_channel(source, profile, main=main, limits=limits)
    return rendition, time.perf_counter() - started, source


class Delivery:
    """The delivery use case and its caches; one per application (worker)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        executor: Executor,
        metrics: Metrics,
        redis: SharedRedis | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.executor = executor
        self.metrics = metrics
        self.variants: ByteLRU[str, Variant] = ByteLRU(settings.cache_memory_mb * MB)
        # Masters are kept decoded (cold sizes then only resize and encode); originals, only
        # read for sizes beyond the master, as their bytes.
        self.masters: ByteLRU[tuple[int, int, str], pipeline.Source] = ByteLRU(
            settings.masters_cache_mb * MB
        )
        self.resolutions = Resolutions()
        # code → position → the last approved image the database resolved it to: read only
        # when the database fails (``resolve``), so it costs the warm path nothing.
        self.known: dict[str, dict[int | None, Resolved]] = {}
        self._db_down_until = 0.0
        self.listener: ImageListener | None = None
        self.redis: RedisTier | None = None
        if redis is not None:
            lookups = metrics.cache_lookups
            self.redis = RedisTier(
                redis,
                namespace="img",
                ttl=settings.cache_ttl,
                on_lookup=lambda result: lookups.labels("redis", result).inc(),
            )
        self._flights: SingleFlight[tuple[Variant, str]] = SingleFlight()
        self._source_flights: SingleFlight[pipeline.Source] = SingleFlight()
        self._resolve_flights: SingleFlight[Resolved | None] = SingleFlight()
        self._parsed: dict[Any, tuple[RenderOptions, int | None]] = {}
        self._negotiated: dict[tuple[str | None, bool], str] = {}
        # Keyed (target, Accept, client hints or None when the request sent none).
        self.recent: dict[tuple[str, str | None, Hints | None], _Recent] = {}
        self._allowed = frozenset(settings.allowed_sizes or ())
        self._allowed_sorted = (
            tuple(sorted(settings.allowed_sizes)) if settings.allowed_sizes is not None else None
        )
        self._short_cache = f"public, max-age={settings.cache_max_age}"
        self._capacity = settings.render_threads + settings.render_queue
        self._in_flight = 0
        self._eager_formats = tuple(f for f in settings.eager_formats if f in OUTPUT_FORMATS)
        # Calibrated quality, found at approval before the presets (off with a target of 0).
        self._calibrated = tuple(settings.quality_bounds) if settings.quality_target > 0 else ()
        self._eager_queue: asyncio.Queue[int] = asyncio.Queue(EAGER_QUEUE)
        self._eager_task: asyncio.Task | None = None
        # Channel renditions: every known profile renders on demand; the enabled ones
        # (ECOGRAM_CHANNELS) also eagerly, after the presets.
        self.channels = channel_asks(settings.channel_profiles)
        self._eager_channels = tuple(
            self.channels[name] for name in settings.channels if name in self.channels
        )
        self._limits = qc_limits(settings)
        # Bound once: labels() takes a lock and a dict lookup, too much for every hit.
        self._mem_hit = metrics.cache_lookups.labels("memory", "hit")
        self._mem_miss = metrics.cache_lookups.labels("memory", "miss")
        self._res_hit = metrics.resolutions.labels("hit")
        self._res_miss = metrics.resolutions.labels("miss")
        self._res_stale = metrics.resolutions.labels("stale")
        self._served = {tier: metrics.img_served.labels(tier)
                        for tier in ("memory", "redis", "render", "not_modified")}
        self.counts: Counts = NoCounts()  # the analytics' (ecogram.app sets it when counting)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self, *, listen: bool = True) -> None:
        if listen and self.settings.database_url:
            self.listener = ImageListener(
                self.settings.database_url, self.resolutions, on_notify=self._forget_known
            )
            await self.listener.start()
        presets = bool(self.settings.eager_widths and self._eager_formats)
        if presets or self._eager_channels or self._calibrated:
            self._eager_task = asyncio.create_task(self._eager_worker(), name="ecogram-eager")

    async def close(self) -> None:
        if self._eager_task is not None:
            self._eager_task.cancel()
            await asyncio.gather(self._eager_task, return_exceptions=True)
        for flights in (self._flights, self._source_flights, self._resolve_flights):
            await flights.cancel_all()
        if self.listener is not None:
            await self.listener.stop()
        if self.redis is not None:
            await self.redis.close()

    # --- the request ------------------------------------------------------------------------

    def parse(
        self, path: str, query_string: str
    ) -> tuple[RenderOptions | ChannelAsk, int | None]:
        """The checked options and ``v`` of a query, memoised by its exact text.

        Pages repeat the same few query strings thousands of times; parsing and checking one
        costs more than the rest of a warm answer. Only queries that passed every check are
        kept, keyed by the text alone unless signed (a signature covers the path as well).
        """
        memo_key = (path, query_string) if "s=" in query_string else query_string
        parsed = self._parsed.get(memo_key)
        if parsed is not None:
            return parsed
        query = MultiDict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        if "preset" in query:
            parsed = (self._preset(query), version_token(query))
        else:
            opts = parse_options(query)
            parsed = (opts, version_token(query))
            self.check_size(opts, path, query)
        _memo_put(self._parsed, memo_key, parsed, PARSED_MEMO)
        return parsed

    def replay(
        self, target: str, accept: str | None, if_none_match: str | None,
        hints: Hints | None = None,
    ) -> Answer | None:
        """The answer to a request answered before, from memory; None when it must be served.

        ``target`` is the raw request target (path and query as sent), ``hints`` the client
        hints as sent (None when there are none: the common case costs one more tuple slot).
        Valid only while the address still resolves to the very image the answer was made for,
        and its variant is still in the memory tier; no work beyond those two lookups.
        """
        recent = self.recent.get((target, accept, hints))
        if recent is None or (
            self.resolutions.get(recent.code, recent.position) is not recent.resolved
        ):
            return None
        if if_none_match is not None and etag_matches(if_none_match, recent.etag):
            self._res_hit.inc()
            self._served["not_modified"].inc()
            self.counts.served(recent.resolved.id, 0, "not_modified")
            return Answer(304, b"", recent.not_modified, "not_modified")
        variant = self.variants.get(recent.key)
        if variant is None:
            return None
        self._res_hit.inc()
        self._mem_hit.inc()
        self._served["memory"].inc()
        self.counts.served(recent.resolved.id, len(variant.data), "memory")
        return Answer(200, variant.data, recent.headers, "memory")

    async def serve(
        self,
        target: str,
        code: str,
        position: int | None,
        path: str,
        query_string: str,
        accept: str | None,
        if_none_match: str | None,
        hints: Hints | None = None,
    ) -> Answer:
        """The answer to ``GET /img/{code}[/{position}]``; AppError for 4xx/503.

        ``target`` is the raw request target, ``path`` the decoded path, ``query_string`` the
        raw query (still percent-encoded), ``hints`` the client hints sent (None: none).
        """
        asked, wanted_version = self.parse(path, query_string)
        if isinstance(asked, ChannelAsk):
            return await self.serve_rendition(
                target, accept, code, position, asked, wanted_version, if_none_match, hints
            )
        for attempt in (1, 2):
            resolved = await self.resolve(code, position)
            fmt = self._negotiate(asked.fmt, accept, resolved.has_alpha)
            # Client hints and Save-Data first (Save-Data lowers the calibrated q one step),
            # then the calibrated q where no q was asked or hinted.
            used = with_quality(self._hinted(asked, hints, resolved, fmt), resolved, fmt)
            key = f"{resolved.id}:{resolved.version}:{used.cache_key(fmt)}"
            etag = f'"{key}"'
            headers = {
                "ETag": etag,
                "Last-Modified": resolved.last_modified,
                "Cache-Control": (
                    IMMUTABLE if wanted_version == resolved.version else self._short_cache
                ),
            }
            if fmt in pipeline.DEFAULT_QUALITY:
                headers[QUALITY_HEADER] = str(used.quality or pipeline.DEFAULT_QUALITY[fmt])
            varies = vary(asked, fmt)  # what the URL leaves to the request's headers
            if varies:
                headers["Vary"] = varies
            if if_none_match is not None and etag_matches(if_none_match, etag):
                self._served["not_modified"].inc()
                self.counts.served(resolved.id, 0, "not_modified")
                return Answer(304, b"", headers, "not_modified")
            try:
                variant, tier = await self.variant(resolved, used, fmt, key)
            except _Stale:
                # Replaced or unpublished between the lookup and the read: look again, once.
                self.resolutions.forget(code)
                if attempt == 2:
                    raise not_found() from None
                continue
            full = {**headers, "Content-Type": variant.content_type}
            _memo_put(self.recent, (target, accept, hints), _Recent(
                code, position, resolved, key, etag, CIMultiDict(full), CIMultiDict(headers)
            ), RECENT_MEMO)
            self._served[tier].inc()
            self.counts.served(resolved.id, len(variant.data), tier)
            return Answer(200, variant.data, full, tier)
        raise AssertionError("unreachable")

    # --- channel renditions ----------------------------------------------------------------

    def _preset(self, query: MultiDict[str]) -> ChannelAsk:
        """``?preset={channel}``: the channel's exact file, so nothing else but ``v``."""
        for name in query:
            if name not in KNOWN and name != "preset":
                raise _bad(name, f"Unknown parameter '{name}'.")
            if len(query.getall(name)) > 1:
                raise _bad(name, f"Parameter '{name}' is given more than once.")
            if name not in ("preset", "v"):
                raise _bad(name, f"Parameter '{name}' cannot be used with 'preset': a channel "
                           "rendition is the channel's own size, format and quality.")
        ask = self.channels.get(query["preset"])
        if ask is None:
            raise _bad("preset", "Parameter 'preset' must be a sales channel's id.",
                       channels=list(self.channels))
        return ask

    def channel_file(
        self, channel: str, ext: str, query_string: str
    ) -> tuple[ChannelAsk, int | None]:
        """The path form's ``{channel}.{ext}`` and query: an unknown channel, or an extension
        that is not the channel's format, is no file here (404); only ``v`` may be asked."""
        ask = self.channels.get(channel)
        if ask is None or ext not in EXTENSIONS[ask.profile.output]:
            raise not_found()
        query = MultiDict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
        for name in query:
            if name != "v":
                raise _bad(name, f"Parameter '{name}' cannot be used here: a channel rendition "
                           "is the channel's own size, format and quality; only 'v' may be "
                           "given.")
            if len(query.getall(name)) > 1:
                raise _bad(name, f"Parameter '{name}' is given more than once.")
        return ask, version_token(query)

    def _rendition_headers(
        self, resolved: Resolved, ask: ChannelAsk, key: str, wanted_version: int | None,
        cache_control: str | None = None,
    ) -> dict[str, str]:
        return {
            "ETag": f'"{key}"',
            "Last-Modified": resolved.last_modified,
            "Cache-Control": cache_control or (
                IMMUTABLE if wanted_version == resolved.version else self._short_cache
            ),
            "Content-Disposition": _disposition(
                resolved.code, resolved.position, ask.profile.id, ask.ext
            ),
        }

    def rendition_key(self, resolved: Resolved, ask: ChannelAsk) -> str:
        """``id:version:rendition_key``; the main photo is the one at position 1."""
        return f"{resolved.id}:{resolved.version}:{ask.keys[resolved.position == 1]}"

    async def serve_rendition(
        self,
        target: str,
        accept: str | None,
        code: str,
        position: int | None,
        ask: ChannelAsk,
        wanted_version: int | None,
        if_none_match: str | None,
        hints: Hints | None = None,
    ) -> Answer:
        """The answer to a channel rendition of the approved photo at this address (hints
        change nothing here; they only key the replay as the request was sent)."""
        for attempt in (1, 2):
            resolved = await self.resolve(code, position)
            key = self.rendition_key(resolved, ask)
            headers = self._rendition_headers(resolved, ask, key, wanted_version)
            if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
                self._served["not_modified"].inc()
                self.counts.served(resolved.id, 0, "not_modified")
                return Answer(304, b"", headers, "not_modified")
            try:
                variant, tier = await self.rendition(resolved, ask, key)
            except _Stale:
                self.resolutions.forget(code)
                if attempt == 2:
                    raise not_found() from None
                continue
            full = self._rendition_full(headers, variant)
            _memo_put(self.recent, (target, accept, hints), _Recent(
                code, position, resolved, key, headers["ETag"], CIMultiDict(full),
                CIMultiDict(headers),
            ), RECENT_MEMO)
            self._served[tier].inc()
            self.counts.served(resolved.id, len(variant.data), tier)
            return Answer(200, variant.data, full, tier)
        raise AssertionError("unreachable")

    @staticmethod
    def _rendition_full(headers: Mapping[str, str], variant: Variant) -> dict[str, str]:
        content_type, findings = _split_type(variant.content_type)
        full = {**headers, "Content-Type": content_type}
        if findings:
            full[FINDINGS_HEADER] = findings
        return full

    async def preview_rendition(
        self, image_id: int, channel: str, if_none_match: str | None
    ) -> Answer:
        """A channel rendition of any live photo, approved or not, for staff (private)."""
        ask = self.channels.get(channel)
        if ask is None:
            raise AppError(404, "not_found", "There is no sales channel with this id.",
                           {"channels": list(self.channels)})
        for attempt in (1, 2):
            async with self.pool.acquire() as conn:
                row = await db.queries.delivery_resolve_id(conn, id=image_id)
            if row is None:
                raise AppError(404, "not_found", "There is no image with this id.")
            resolved = Resolved.from_row(row)
            key = self.rendition_key(resolved, ask)
            headers = self._rendition_headers(resolved, ask, key, None, "private, no-cache")
            if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
                return Answer(304, b"", headers, "not_modified")
            try:
                variant, tier = await self.rendition(resolved, ask, key)
            except _Stale:
                if attempt == 2:
                    raise AppError(409, "conflict", "The photo changed while it was being "
                                   "rendered; try again.") from None
                continue
            return Answer(200, variant.data, self._rendition_full(headers, variant), tier)
        raise AssertionError("unreachable")

    async def rendition(
        self, resolved: Resolved, ask: ChannelAsk, key: str
    ) -> tuple[Variant, str]:
        """The rendition's bytes and the tier they came from (as ``variant``)."""
        hit = self.variants.get(key)
        if hit is not None:
            self._mem_hit.inc()
            return hit, "memory"
        self._mem_miss.inc()
        return await self._flights.run(key, lambda: self._fill_rendition(resolved, ask, key))

    async def _fill_rendition(
        self, resolved: Resolved, ask: ChannelAsk, key: str
    ) -> tuple[Variant, str]:
        if self.redis is not None:
            shared = await self.redis.get(key)
            if shared is not None:
                self.variants.put(key, shared, len(shared.data))
                return shared, "redis"
        self._take_slot()
        # From the original: the channel's side may exceed the master's, and findings such
        # as too_small must be the original's (readiness measures the original too).
        job = functools.partial(_rendition_timed, profile=ask.profile,
                                main=resolved.position == 1, limits=self._limits)
        _, made, _ = await self._load_and_render(resolved, "original", job, ask.profile.output)
        variant = Variant(made.data, _rendition_type(made))
        self.variants.put(key, variant, len(variant.data))
        if self.redis is not None:
            self.redis.put_later(key, variant)
        return variant, "render"

    def _hinted(
        self, opts: RenderOptions, hints: Hints | None, resolved: Resolved, fmt: str
    ) -> RenderOptions:
        """The options once client hints apply (``options.apply_hints``) and ``Save-Data: on``
        lowers the quality one step (an explicit ``q`` wins; PNG has no quality)."""
        if hints is None:
            return opts
        opts = apply_hints(opts, hints, self._allowed_sorted, resolved.width)
        if saves_data(hints.save_data) and opts.quality is None and fmt in LOSSY_FORMATS:
            opts = dataclasses.replace(
                opts, quality=save_data_quality(self.default_quality(resolved, fmt, opts))
            )
        return opts

    def default_quality(self, resolved: Resolved, fmt: str, opts: RenderOptions) -> int:
        """The quality a request for ``opts`` without ``q`` gets in this format: this version's
        calibrated q for its width (``with_quality``), else the pipeline's fixed default."""
        return with_quality(opts, resolved, fmt).quality or pipeline.DEFAULT_QUALITY[fmt]

    def _negotiate(self, fmt: str, accept: str | None, has_alpha: bool) -> str:
        """``options.negotiate``, memoised: browsers send a handful of distinct Accept headers."""
        if fmt != "auto":
            return fmt
        memo_key = (accept, has_alpha)
        chosen = self._negotiated.get(memo_key)
        if chosen is None:
            chosen = negotiate(fmt, accept, has_alpha)
            _memo_put(self._negotiated, memo_key, chosen, ACCEPT_MEMO)
        return chosen

    def check_size(self, opts: RenderOptions, path: str, query: Mapping[str, str]) -> None:
        """Allowed sizes, or a valid signature; a signature that is given must be valid."""
        signature = query.get(signing.SIGNATURE_PARAM)
        if signature is not None:
            items = query.items()
            if not signing.verify(self.settings.secret_key or "", path, items, signature):
                # 403, as a key that does not open: the request is well formed.
                raise AppError(403, "invalid_signature", "The signature does not match this "
                               "URL.", {"parameter": "s"})
            return
        if self.settings.allowed_sizes is None:
            return
        target_w, target_h = opts.target_size()
        for name, asked, css in (("w", target_w, opts.width), ("h", target_h, opts.height)):
            if asked is None or asked in self._allowed:
                continue
            blame = "dpr" if css in self._allowed else name
            raise _bad(
                blame,
                f"{asked} pixels is not an allowed size (parameter '{name}' times 'dpr'); use "
                "one of the allowed sizes or a signed URL.",
                "size_not_allowed",
                size=asked,
                allowed=list(self.settings.allowed_sizes),
            )

    async def resolve(self, code: str, position: int | None) -> Resolved:
        """The approved live image at this address, or 404."""
        # A NUL cannot be in a stored code (PostgreSQL text refuses it): no address has one.
        if not code or len(code) > MAX_CODE or "\x00" in code or (
            position is not None and not 1 <= position <= MAX_POSITION
        ):
            raise not_found()
        cached = self.resolutions.get(code, position)
        if cached is not MISSING:
            self._res_hit.inc()
            if cached is None:
                raise not_found()
            return cached
        self._res_miss.inc()
        if self._db_down_until and time.monotonic() < self._db_down_until:
            # The database just failed: what is known is answered without asking it again.
            stale = self.known.get(code, {}).get(position)
            if stale is not None:
                self._res_stale.inc()
                return stale
        try:
            found = await self._resolve_flights.run(
                (code, position), lambda: self._resolve_db(code, position)
            )
        except Exception as exc:
            if not db.is_unavailable(exc):
                raise
            self._db_down_until = time.monotonic() + STALE_WINDOW
            stale = self.known.get(code, {}).get(position)
            if stale is None:
                raise  # nothing known: the middleware's 503 unavailable
            self._res_stale.inc()
            return stale
        if found is None:
            raise not_found()
        return found

    async def _resolve_db(self, code: str, position: int | None) -> Resolved | None:
        epoch = self.resolutions.epoch
        async with self.pool.acquire() as conn:
            row = await db.queries.delivery_resolve(conn, code=code, position=position)
        found = Resolved.from_row(row) if row is not None else None
        self.resolutions.put(code, position, found, epoch)
        self._db_down_until = 0.0
        if epoch == self.resolutions.epoch:  # not overtaken by a change meanwhile
            self._remember(code, position, found)
        return found

    def _remember(self, code: str, position: int | None, found: Resolved | None) -> None:
        positions = self.known.get(code)
        if found is None:
            if positions is not None:
                positions.pop(position, None)
            return
        if positions is None:
            if len(self.known) >= KNOWN_CODES:
                del self.known[next(iter(self.known))]  # oldest code out, as in Resolutions
            positions = self.known[code] = {}
        positions[position] = found

    def _forget_known(self, code: str) -> None:
        """NOTIFY said this code changed: its last resolution may be wrong now."""
        self.known.pop(code, None)

    async def variant(
        self, resolved: Resolved, opts: RenderOptions, fmt: str, key: str
    ) -> tuple[Variant, str]:
        """The variant's bytes and the tier they came from."""
        hit = self.variants.get(key)
        if hit is not None:
            self._mem_hit.inc()
            return hit, "memory"
        self._mem_miss.inc()
        return await self._flights.run(key, lambda: self._fill(resolved, opts, fmt, key))

    async def _fill(
        self, resolved: Resolved, opts: RenderOptions, fmt: str, key: str
    ) -> tuple[Variant, str]:
        if self.redis is not None:
            shared = await self.redis.get(key)
            if shared is not None:
                self.variants.put(key, shared, len(shared.data))
                return shared, "redis"
        kind, width, height = self.source_for(resolved, opts)
        # A place in the render queue first: beyond it, 503 before the heaviest read.
        self._take_slot()
        job = functools.partial(
            _render_timed, opts=opts, fmt=fmt, width=width, height=height,
            # Planned on the original's size, so a render from the (rounded) master has the
            # dimensions a render from the original would have.
            plan_size=(resolved.width, resolved.height), decode=kind == "master",
        )
        source, rendered, used = await self._load_and_render(resolved, kind, job, fmt)
        if used is not source:  # the master, decoded by this render: keep it decoded
            source_key = (resolved.id, resolved.version, kind)
            self.masters.put(source_key, used, pipeline.source_nbytes(used))
        variant = Variant(rendered.data, rendered.content_type)
        self.variants.put(key, variant, len(variant.data))
        if self.redis is not None:
            self.redis.put_later(key, variant)
        return variant, "render"

    @staticmethod
    def source_for(resolved: Resolved, opts: RenderOptions) -> tuple[str, int, int]:
        """("master" | "original", its upright width, height) for these options.

        The master (long side ≤ ECOGRAM_MASTER_SIDE, upright, sRGB) serves every size it can
        fill without enlarging; larger sizes render from the original.
        """
        planned = pipeline.plan(opts, resolved.width, resolved.height)
        rw, rh = planned.resize
        if rw <= resolved.master_width and rh <= resolved.master_height:
            return "master", resolved.master_width, resolved.master_height
        return "original", resolved.width, resolved.height

    async def _source(self, resolved: Resolved, kind: str) -> pipeline.Source:
        key = (resolved.id, resolved.version, kind)
        data = self.masters.get(key)
        if data is not None:
            self.metrics.masters_cache.labels("hit").inc()
            return data
        self.metrics.masters_cache.labels("miss").inc()
        return await self._source_flights.run(key, lambda: self._load_source(resolved, kind))

    async def _load_source(self, resolved: Resolved, kind: str) -> bytes:
        query = db.queries.delivery_master if kind == "master" else db.queries.delivery_original
        async with self.pool.acquire() as conn:
            row = await query(conn, id=resolved.id, version=resolved.version)
        if row is None:
            raise _Stale()
        # Read with the pool, not the connection above: an object store's read holds none.
        data = await storage.get(self.pool, row["store"], row["key"])
        self.masters.put((resolved.id, resolved.version, kind), data, len(data))
        return data

    def _take_slot(self) -> None:
        """A place among the renders running or queued (ECOGRAM_RENDER_THREADS + _QUEUE), or a
        503 ``overloaded``. Released by ``_load_and_render``."""
        if self._in_flight >= self._capacity:
            self.metrics.render_rejections.labels("queue_full").inc()
            raise AppError(
                503, "overloaded", "The image server is busy; try again in a moment.",
                {"retry_after": 1}, headers={"Retry-After": "1"},
            )
        self._in_flight += 1
        self.metrics.render_queue.set(self._in_flight)

    def _release_slot(self) -> None:
        self._in_flight -= 1
        self.metrics.render_queue.set(self._in_flight)

    async def _load_and_render(
        self, resolved: Resolved, kind: str, job: RenderJob, fmt: str
    ) -> tuple[pipeline.Source, Any, pipeline.Source]:
        """Read the source and run ``job(source)`` (a render: its result, seconds, the source
        used) in the libvips pool, all within ECOGRAM_RENDER_TIMEOUT (the read, the wait for a
        thread, the render); the caller holds a slot.

        The slot is given back here when the render never started; a submitted render gives
        it back when its thread is done, not when the deadline passes: a thread cannot be
        killed, so an overrun keeps its place in the count and overruns cannot pile up beyond
        the queue.
        """
        submitted = False
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout(self.settings.render_timeout)
        try:
            async with deadline:
                source = await self._source(resolved, kind)
                work = self.executor.submit(job, source)
                submitted = True
                work.add_done_callback(lambda _: _call_soon(loop, self._release_slot))
                future = asyncio.wrap_future(work)
                future.add_done_callback(_retrieve)
                rendered, seconds, used = await asyncio.shield(future)
        except TimeoutError:
            if not deadline.expired():
                raise  # the database's own timeout: the middleware's 503 unavailable
            if submitted:
                work.cancel()  # dequeued if it has not started; a running render finishes
            self.metrics.render_rejections.labels("timeout").inc()
            log.warning(json.dumps({"event": "render_timeout", "format": fmt,
                                    "timeout_s": self.settings.render_timeout}))
            raise AppError(
                503, "render_timeout", "Rendering this image took too long; try again later.",
                {"retry_after": 5}, headers={"Retry-After": "5"},
            ) from None
        finally:
            if not submitted:
                self._release_slot()
        self.metrics.renders.labels(fmt, kind).inc()
        self.metrics.render_seconds.labels(fmt).observe(seconds)
        self.counts.rendered(resolved.id, seconds)
        return source, rendered, used

    # --- placeholder ------------------------------------------------------------------------

    async def placeholder(
        self, code: str, position: int | None, query: Mapping[str, str],
        if_none_match: str | None,
    ) -> Answer:
        for name in query:
            if name != "v":
                raise _bad(name, f"Unknown parameter '{name}'.")
        wanted_version = version_token(query)
        resolved = await self.resolve(code, position)
        headers = {
            "ETag": f'"{resolved.id}:{resolved.version}:placeholder"',
            "Last-Modified": resolved.last_modified,
            "Cache-Control": (
                IMMUTABLE if wanted_version == resolved.version else self._short_cache
            ),
        }
        if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
            return Answer(304, b"", headers, "not_modified")
        body = json.dumps({
            "blurhash": resolved.blurhash,
            "width": resolved.width,
            "height": resolved.height,
            "color": resolved.color,
        }).encode()
        headers["Content-Type"] = "application/json"
        return Answer(200, body, headers, "memory")

    # --- hooks: approvals and changes (ecogram.catalog.events) ---------------------------

    async def on_approved(self, image_id: int) -> None:
        """A photo went live: drop cached "nothing here" answers, queue its presets and the
        enabled channels' renditions."""
        self.resolutions.clear()
        if self._eager_task is None:
            return
        try:
            self._eager_queue.put_nowait(image_id)
        except asyncio.QueueFull:
            self.metrics.eager_renders.labels("skipped").inc()

    async def on_changed(self, image_id: int) -> None:
        """What an image's address serves changed: forget it here, now (NOTIFY tells others)."""
        self.resolutions.clear()
        for positions in self.known.values():
            for position in [p for p, known in positions.items() if known.id == image_id]:
                del positions[position]
        prefix = f"{image_id}:"
        self.variants.discard_where(lambda key: key.startswith(prefix))
        self.masters.discard_where(lambda key: key[0] == image_id)

    async def eager_idle(self) -> None:
        """Wait until every queued approval's presets are done (tests, shutdown)."""
        await self._eager_queue.join()

    async def _eager_worker(self) -> None:
        # One at a time: presets fill the cache in the background without crowding the pool
        # that shoppers' renders need.
        while True:
            image_id = await self._eager_queue.get()
            try:
                await self._eager_one(image_id)
            except Exception as exc:
                self.metrics.eager_renders.labels("failed").inc()
                line = json.dumps({"event": "eager_render_failed", "image_id": image_id,
                                   "error": type(exc).__name__})
                if db.is_unavailable(exc) or isinstance(exc, storage.StoreUnavailable):
                    # the database or the object store is away: nothing to trace
                    log.warning(line)
                else:
                    log.exception(line)
            finally:
                self._eager_queue.task_done()

    async def _eager_one(self, image_id: int) -> None:
        async with self.pool.acquire() as conn:
            row = await db.queries.delivery_resolve_id(conn, id=image_id)
        if row is None or row["status"] != "approved":
            self.metrics.eager_renders.labels("skipped").inc()
            return
        resolved = Resolved.from_row(row)
        resolved = await self._calibrate(resolved)
        for fmt in self._eager_formats:
            for width in self.settings.eager_widths:
                opts = with_quality(RenderOptions(width=width), resolved, fmt)
                key = f"{resolved.id}:{resolved.version}:{opts.cache_key(fmt)}"
                if key in self.variants:
                    self.metrics.eager_renders.labels("cached").inc()
                    continue
                try:
                    _, tier = await self.variant(resolved, opts, fmt, key)
                except (AppError, _Stale):
                    self.metrics.eager_renders.labels("skipped").inc()
                    return
                self.metrics.eager_renders.labels(
                    "rendered" if tier == "render" else "cached").inc()
        # Then the renditions of the channels the shop sells on (ECOGRAM_CHANNELS).
        for ask in self._eager_channels:
            key = self.rendition_key(resolved, ask)
            if key in self.variants:
                self.metrics.eager_renders.labels("cached").inc()
                continue
            try:
                _, tier = await self.rendition(resolved, ask, key)
            except (AppError, _Stale):
                self.metrics.eager_renders.labels("skipped").inc()
                return
            self.metrics.eager_renders.labels(
                "rendered" if tier == "render" else "cached").inc()


    async def _calibrate(self, resolved: Resolved) -> Resolved:
        """Find and store the calibrated q of each format this version lacks (docs/delivery.md,
        "Calibrated quality"): one search per format in the libvips pool, on the renders at
        ECOGRAM_QUALITY_WIDTHS against the original; then
        every worker forgets its resolution of the code (NOTIFY), so the next render uses it.
        A failure is logged and leaves the fixed defaults in place."""
        missing = tuple(f for f in self._calibrated if f not in resolved.quality)
        if not missing:
            return resolved
        try:
            source = await self._source(resolved, "master")
            original = await self._source(resolved, "original")
            assert isinstance(original, bytes)  # originals are kept as their bytes
            job = functools.partial(
                calibrate_timed, original=original, resolved=resolved, formats=missing,
                target=self.settings.quality_target, bounds=self.settings.quality_bounds,
                widths=self.settings.quality_widths,
            )
            loop = asyncio.get_running_loop()
            found, seconds, used = await loop.run_in_executor(self.executor, job, source)
            if used is not source:  # decoded here: the eager renders that follow reuse it
                self.masters.put((resolved.id, resolved.version, "master"), used,
                                 pipeline.source_nbytes(used))
            await store_calibration(self.pool, resolved, found, self.settings.quality_target)
        except _Stale:
            return resolved  # replaced meanwhile: the new version is calibrated on approval
        except Exception as exc:
            line = json.dumps({"event": "quality_calibration_failed", "image_id": resolved.id,
                               "error": type(exc).__name__})
            if db.is_unavailable(exc) or isinstance(exc, storage.StoreUnavailable):
                log.warning(line)
            else:
                log.exception(line)
            return resolved
        self.resolutions.forget(resolved.code)
        log.info(json.dumps({
            "event": "quality_calibrated", "image_id": resolved.id, "version": resolved.version,
            **calibration_fields(found), "seconds": round(seconds, 2),
        }))
        return replace(resolved, quality={**resolved.quality, **_by_format(found)})


async def store_calibration(
    pool: asyncpg.Pool, resolved: Resolved, found: list[quality.Calibration], target: float
) -> None:
    """Store this version's results, forget older versions', and tell every worker (NOTIFY)
    to resolve the code again, so the next render uses them."""
    async with pool.acquire() as conn, conn.transaction():
        await db.queries.quality_forget_formats(
            conn, image_id=resolved.id, version=resolved.version,
            formats=sorted({r.fmt for r in found}))
        for result in found:
            await db.queries.quality_store(
                conn, image_id=resolved.id, version=resolved.version, format=result.fmt,
                width=result.width, q=result.q, score=result.score, target=target,
                calibration=quality.VERSION,
            )
        await db.queries.quality_forget_older(
            conn, image_id=resolved.id, version=resolved.version)
        await db.queries.quality_notify(conn, code=resolved.code)


def with_quality(opts: RenderOptions, resolved: Resolved, fmt: str) -> RenderOptions:
    """The options a render uses: an explicit ``q`` wins; without one, this version's calibrated
    q for the format at the width the render comes out (``quality.for_width``) when known, else
    the pipeline's fixed default (``quality`` stays None). The cache key and ETag are built
    from the result, so a calibration never serves the bytes of another q under one key."""
    if opts.quality is not None:
        return opts
    table = resolved.quality.get(fmt)
    if not table:
        return opts
    width = pipeline.plan(opts, resolved.width, resolved.height).out[0]
    return replace(opts, quality=quality.for_width(table, width))


def _quality_table(stored: Mapping[str, Mapping[str, int]] | None) -> dict[str, dict[int, int]]:
    """The resolution query's calibrated quality (JSON: format → {width as text → q})."""
    return {fmt: {int(width): q for width, q in widths.items()}
            for fmt, widths in (stored or {}).items()}


def _by_format(found: list[quality.Calibration], value: str = "q") -> dict[str, dict[int, Any]]:
    """One field of a calibration's results (``q`` or ``score``) as format → {width → value}."""
    table: dict[str, dict[int, Any]] = {}
    for result in found:
        table.setdefault(result.fmt, {})[result.width] = getattr(result, value)
    return table


def calibration_fields(found: list[quality.Calibration]) -> dict[str, Any]:
    """A calibration's results for its log line: q and score per format and output width."""
    return {"q": _by_format(found, "q"), "score": _by_format(found, "score")}


def _call_soon(loop: asyncio.AbstractEventLoop, callback) -> None:
    """``callback`` on the event loop, from any thread (nothing to do once it is closed)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def _retrieve(future: asyncio.Future) -> None:
    """Retrieve the outcome of a render nobody waits for any more (its caller timed out)."""
    if not future.cancelled():
        future.exception()


# --- signed URLs ------------------------------------------------------------------------------

async def signed_url(
    conn: asyncpg.Connection, settings: Settings, image_id: int, params: Mapping[str, str]
) -> dict[str, Any]:
    """A signed ``/img`` URL of this image with these options (and its current ``v``)."""
    chosen = {name: params[name] for name in params if name not in ("v", "s")}
    parse_options(chosen)  # a bad option is a 400 now, not a broken URL later
    row = await db.queries.delivery_resolve_id(conn, id=image_id)
    if row is None:
        raise AppError(404, "not_found", "There is no image with this id.")
    path = f"/img/{row['code']}/{row['position']}"
    signed = signing.signed_path(
        settings.secret_key or "", path, {**chosen, "v": str(row["version"])}
    )
    return {
        "url": f"{settings.public_url}{signed}",
        "path": signed,
        "image_id": row["id"],
        "version": row["version"],
        "status": row["status"],
    }


def sign_path(secret: str, path: str, params: Mapping[str, str]) -> str:
    """Sign a ``/img`` path given as typed or as found in a URL (percent-encoded or not)."""
    parse_options({k: v for k, v in params.items() if k != "s"})
    return signing.signed_path(secret, urllib.parse.unquote(path), params)
