"""The import use case: files in, records (or reasons) out.

One batch runs as a small pipeline. Up to ``concurrency`` files are *prepared* at once — bytes
read (upload, archive member, disk, URL), an early duplicate check on the sha256, then the probe
and the master made in the libvips thread pool — while the files already prepared are *stored*
one at a time, in their order, each in its own transaction. Storing in order keeps "next free
position" deterministic; preparing ahead keeps both cores busy while the database works.

The order is the one the files ask for, not the one they came in (``storage_order``): a code's
photos are stored by the position they ask for (by name, ``SKU_2.jpg``, or a ``position``
field; none first), then by name. A position asked for is kept on the record
(``requested_position``), so a photo that asked for a place past the code's end goes before it
the moment a photo arrives for a place before it (``_placement``), in this batch or a later one.

A file lands whole (image row, original and master, batch item, audit entry) or not at all, and
whatever goes wrong with one file becomes that file's ``rejected`` line: the others go on.

A batch is ``running`` while its runner holds its lease (``_Leases``), then ``done``; a batch
whose runner stopped early, or died (even by ``kill -9``), reads as ``interrupted``. Its counts
are always those of its lines, so a report never shows 0/0/0 beside accepted files.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from ecogram import db, storage
from ecogram.auth.identity import Identity
from ecogram.auth.roles import ROLES, allows
from ecogram.catalog import audit
from ecogram.catalog.records import image_record, iso
from ecogram.catalog.sources import (
    Fields,
    ImportItem,
    UrlFetcher,
    ZipArchive,
    code_from_filename,
    file_item,
    manifest_items,
    parse_manifest,
    walk_folder,
)
from ecogram.errors import AppError
from ecogram.imaging import vips
from ecogram.imaging.pipeline import Master
from ecogram.imaging.probe import Probe, QCLimits, inspect
from ecogram.settings import Settings

log = logging.getLogger("ecogram.import")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
DONE, INTERRUPTED = "done", "interrupted"  # how a batch ends (it is "running" until then)
MAX_FILENAME = 255
STORE_CONCURRENCY = 2  # files written to the database at once (each in its own transaction)


@dataclass
class Outcome:
    """What happened to one file of a batch."""

    seq: int
    filename: str
    outcome: str
    image_id: int | None = None
    code: str | None = None  # the error code when rejected
    message: str | None = None
    status: int | None = None  # the HTTP status a single upload of this file gets
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def rejected(cls, seq: int, filename: str, error: AppError) -> Outcome:
        return cls(seq, filename, REJECTED, None, error.code, error.message, error.status,
                   dict(error.details))


@dataclass
class _Prepared:
    seq: int
    item: ImportItem
    code: str
    position: int | None
    data: bytes
    probe: Probe
    master: Master
    master_sha256: str


Progress = Callable[[Outcome], None]


def qc_limits(settings: Settings) -> QCLimits:
    return QCLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_frames=settings.max_frames,
        min_side=settings.min_side,
        zoom_side=settings.zoom_side,
    )


def _short_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "upload"
    return name[:MAX_FILENAME]


class ImportRun:
    """One batch: create it, feed it items, get the stored report back."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        executor: Executor,
        actor: Identity,
        source: str,
        *,
        concurrency: int | None = None,
        on_progress: Progress | None = None,
        fetcher: UrlFetcher | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.executor = executor
        self.actor = actor
        self.source = source
        # One more than the libvips threads: the next file is read while two are probed.
        self.concurrency = concurrency or settings.render_threads + 1
        self.on_progress = on_progress
        self.limits = qc_limits(settings)
        # Idempotent; makes sure only the accepted loaders can parse what strangers send.
        vips.configure()
        self._fetcher = fetcher
        self._own_fetcher = fetcher is None
        self.batch_id: int | None = None

    async def run(self, items: Iterable[ImportItem]) -> dict[str, Any]:
        """Import every item; return the batch report (as ``GET /imports/{id}`` serves it)."""
        leases = _Leases.of(self.pool, self.settings.database_url)
        self.batch_id = await leases.start(
            source=self.source, importer_id=self.actor.id, importer=self.actor.name
        )
        status = INTERRUPTED
        try:
            await self._drive(storage_order(items, self.settings.filename_pattern))
            status = DONE
        finally:
            try:
                async with self.pool.acquire() as conn:
                    await self.finish(conn, status)
            finally:
                await leases.end(self.batch_id)
        async with self.pool.acquire() as conn:
            report = await batch_report(conn, self.batch_id, self.settings.public_url)
        assert report is not None
        return report

    async def resume(
        self, batch_id: int, items: Iterable[ImportItem], seen: set[int],
        stop: asyncio.Event | None = None,
    ) -> bool:
        """Import the items of an existing batch whose lease the caller holds (an import job,
        ``catalog/import_jobs.py``), all but those whose ``seq`` has a line already (``seen``),
        in the batch's own order; True when every item was seen, False when ``stop`` was set
        first (the files in hand are stored first). The caller ends the batch."""
        self.batch_id = batch_id
        ordered = storage_order(items, self.settings.filename_pattern)
        return await self._drive([p for p in ordered if p.seq not in seen], stop)

    async def finish(self, conn: asyncpg.Connection, status: str) -> None:
        """End the batch (``done`` or ``interrupted``): its counts are those of its lines."""
        await db.queries.import_finish_batch(conn, id=self.batch_id, status=status)
        row = await db.queries.import_get_batch(conn, id=self.batch_id)
        counts = {k: row[k] for k in (ACCEPTED, DUPLICATE, REJECTED)}
        await audit.record(conn, self.actor, "import.batch", target=f"batch:{self.batch_id}",
                           details={"batch_id": self.batch_id, "source": self.source,
                                    "status": status, **counts})
        log.info(json.dumps({"event": "import_batch", "batch_id": self.batch_id,
                             "source": self.source, "status": status, **counts}))

    async def _drive(self, ordered: list[Planned], stop: asyncio.Event | None = None) -> bool:
        """Prepare and store the items; True when all were seen, False when stopped."""
        queue: asyncio.Queue[asyncio.Task | None] = asyncio.Queue(maxsize=self.concurrency)
        stopped = False

        async def produce() -> None:
            nonlocal stopped
            try:
                for planned in ordered:
                    if stop is not None and stop.is_set():
                        stopped = True  # the files already in hand are still stored
                        break
                    await queue.put(asyncio.create_task(self._prepare(planned)))
            except asyncio.CancelledError:
                raise  # the consumer is gone: nobody would read the end marker
            except BaseException:
                await queue.put(None)
                raise
            await queue.put(None)

        # Stores overlap (each waits on the database most of its time), except that stores of
        # one code run in file order, so "next free position" follows the batch, and stores of
        # the same bytes too, so the second one sees the first (same_image_elsewhere).
        store_slots = asyncio.Semaphore(STORE_CONCURRENCY)
        last_store_of: dict[str, asyncio.Task] = {}
        stores: set[asyncio.Task] = set()

        async def finish(prepared: _Prepared | Outcome, after: list[asyncio.Task]) -> None:
            try:
                if isinstance(prepared, _Prepared):
                    if after:
                        await asyncio.wait(after)
                    outcome = await self._guarded_store(prepared)
                else:
                    outcome = prepared
                if outcome.outcome != ACCEPTED:
                    await self._add_item(outcome)
                if self.on_progress is not None:
                    self.on_progress(outcome)
            finally:
                store_slots.release()

        def forget(key: str, done: asyncio.Task) -> None:
            # Drop a chain once its last store is done: a batch of a million codes must not
            # keep a million finished tasks.
            if last_store_of.get(key) is done:
                del last_store_of[key]

        async def consume() -> None:
            while (task := await queue.get()) is not None:
                prepared = await task
                await store_slots.acquire()
                keys = (
                    ["code:" + prepared.code, "sha:" + prepared.probe.sha256]
                    if isinstance(prepared, _Prepared) else []
                )
                after = [last_store_of[k] for k in keys if k in last_store_of]
                store = asyncio.create_task(finish(prepared, after))
                stores.add(store)
                store.add_done_callback(stores.discard)
                for key in keys:
                    last_store_of[key] = store
                    store.add_done_callback(functools.partial(forget, key))
            if stores:
                await asyncio.gather(*stores)

        producer = asyncio.create_task(produce())
        try:
            await consume()
            await producer
        finally:
            if not producer.done():
                producer.cancel()
            for store in list(stores):
                store.cancel()
            # Whatever is still queued (after a failure above) must not run on unobserved.
            while not queue.empty():
                task = queue.get_nowait()
                if task is not None:
                    task.cancel()
            if self._own_fetcher and self._fetcher is not None:
                await self._fetcher.close()
                self._fetcher = None
        return not stopped

    # --- prepare: bytes, early duplicate check, probe + master ---------------------------------

    async def _prepare(self, planned: Planned) -> _Prepared | Outcome:
        seq, item = planned.seq, planned.item
        try:
            return await self._prepare_item(planned)
        except AppError as error:
            return Outcome.rejected(seq, _short_name(item.filename), error)
        except Exception:
            log.exception(json.dumps({"event": "import_prepare_failed", "seq": seq}))
            return Outcome.rejected(seq, _short_name(item.filename), _internal())

    async def _prepare_item(self, planned: Planned) -> _Prepared | Outcome:
        seq, item, code, position = planned.seq, planned.item, planned.code, planned.position
        filename = _short_name(item.filename)
        if item.error is not None:
            raise item.error
        loop = asyncio.get_running_loop()
        if item.url is not None:
            data = await self._get_fetcher().fetch(item.url)
            sha256 = await loop.run_in_executor(None, _sha256, data)
        elif item.load is not None:
            # Reading an archive member inflates it: CPU work, kept off the event loop.
            data, sha256 = await loop.run_in_executor(None, _load_and_hash, item.load)
        else:  # pragma: no cover - every source sets one of the three
            raise AssertionError("an import item needs a loader, a URL or an error")
        if not data:
            raise AppError(422, "empty_file", "The file is empty.")
        # Re-running an import should cost next to nothing: known bytes skip the decode.
        async with self.pool.acquire() as conn:
            existing = await db.queries.import_find_same_bytes(conn, code=code, sha256=sha256)
        if existing is not None:
            return _duplicate(seq, filename, existing, code)
        probe, master = await loop.run_in_executor(
            self.executor, inspect, data, self.limits, self.settings.master_side
        )
        master_sha256 = await loop.run_in_executor(None, _sha256, master.data)
        return _Prepared(seq, item, code, position, data, probe, master, master_sha256)

    def _get_fetcher(self) -> UrlFetcher:
        if self._fetcher is None:
            self._fetcher = UrlFetcher(
                max_bytes=self.settings.max_upload_bytes,
                timeout=self.settings.url_timeout,
                allow_private=self.settings.import_allow_private_urls,
            )
        return self._fetcher

    # --- store: one transaction per file ------------------------------------------------------

    async def _guarded_store(self, prepared: _Prepared) -> Outcome:
        filename = _short_name(prepared.item.filename)
        try:
            return await self._store(prepared, filename)
        except _DuplicateRace:
            async with self.pool.acquire() as conn:
                existing = await db.queries.import_find_same_bytes(
                    conn, code=prepared.code, sha256=prepared.probe.sha256
                )
            return _duplicate(prepared.seq, filename, existing, prepared.code)
        except AppError as error:
            return Outcome.rejected(prepared.seq, filename, error)
        except Exception:
            log.exception(json.dumps({"event": "import_store_failed", "seq": prepared.seq}))
            return Outcome.rejected(prepared.seq, filename, _internal())

    async def _store(self, p: _Prepared, filename: str) -> Outcome:
        probe, item, code = p.probe, p.item, p.code
        q = db.queries
        async with self.pool.acquire() as conn, conn.transaction():
            await q.import_lock_code(conn, code=code)
            found = await q.import_checks(
                conn, code=code, sha256=probe.sha256, phash=probe.phash, requested=p.position,
                max_distance=self.settings.near_duplicate_distance,
            )
            if found["same_id"] is not None:
                return _duplicate(p.seq, filename, found["same_id"], code)
            qc = probe.qc
            warnings = list(qc.get("warnings", []))
            if found["elsewhere_id"] is not None:
                warnings.append({
                    "code": "same_image_elsewhere",
                    "message": f"The same file is already image {found['elsewhere_id']} of "
                               f"product {found['elsewhere_code']} (position "
                               f"{found['elsewhere_position']}).",
                    "image_id": found["elsewhere_id"],
                })
            if found["near_id"] is not None:
                warnings.append({
                    "code": "near_duplicate",
                    "message": f"This looks like image {found['near_id']} of the same product "
                               f"(position {found['near_position']}; {found['near_distance']} "
                               "of 64 bits differ).",
                    "image_id": found["near_id"],
                    "distance": found["near_distance"],
                })
            qc = {**qc, "warnings": warnings}
            last = found["last"]
            position = _placement(p.position, last, found["before"])
            product = item.product if item.product is not None else (found["product"] or "")
            image_id = await q.import_insert_image(
                conn, code=code, product=product, position=position,
                requested_position=p.position, filename=filename,
                format=probe.format, mime=probe.mime, width=probe.width, height=probe.height,
                file_size=probe.file_size, sha256=probe.sha256, phash=probe.phash,
                blurhash=probe.blurhash, color=probe.color, has_alpha=probe.has_alpha, qc=qc,
                alt=item.alt or "", importer_id=self.actor.id, importer=self.actor.name,
                batch_id=self.batch_id,
            )
            if image_id is None:
                raise _DuplicateRace  # rolls the transaction back; the caller looks it up
            shifted = 0
            if position <= last:
                shifted = await q.import_shift_positions(
                    conn, code=code, position=position, id=image_id
                )
            # The objects first, then the record that names them (ecogram.storage).
            m, where = p.master, self.settings.storage_url
            await storage.put(conn, where, probe.sha256, p.data)
            await storage.put(conn, where, p.master_sha256, m.data)
            await q.import_insert_original(
                conn, image_id=image_id, store=where, master_sha256=p.master_sha256,
                master_format=m.format, master_width=m.width, master_height=m.height,
            )
            await audit.record(
                conn, self.actor, "image.imported", image_id=image_id,
                details={"code": code, "position": position, "filename": filename,
                         "batch_id": self.batch_id, "sha256": probe.sha256,
                         "warnings": [w["code"] for w in warnings], "shifted": shifted},
            )
            outcome = Outcome(p.seq, filename, ACCEPTED, image_id,
                              details={"warnings": [w["code"] for w in warnings]})
            await self._add_item(outcome, conn)
        return outcome

    async def _add_item(self, o: Outcome, conn: asyncpg.Connection | None = None) -> None:
        values = dict(batch_id=self.batch_id, seq=o.seq, filename=o.filename, outcome=o.outcome,
                      image_id=o.image_id, code=o.code, message=o.message, status=o.status,
                      details=o.details)
        if conn is not None:
            await db.queries.import_add_item(conn, **values)
            return
        async with self.pool.acquire() as own:
            await db.queries.import_add_item(own, **values)


@dataclass(frozen=True)
class Planned:
    """One item of a batch, where it stands: its place in the request and the code and position
    it asks for (``code`` is empty when none can be read: the item is refused when prepared)."""

    seq: int
    item: ImportItem
    code: str
    position: int | None


def storage_order(items: Iterable[ImportItem], pattern: str) -> list[Planned]:
    """The batch's items in the order they are stored, each with the code and position it asks
    for; ``seq`` keeps the request's order for the report.

    A code's photos go by the position asked for (none first), then, when the code came from
    the file names, by name (``X.jpg``, ``X_2.jpg``, ``X_3.jpg`` however they were sent); with a
    code given, in the request's order. Photos of one code that ask for the same position (one
    ``position`` field for several files) go in from there as a block: each asks for at least
    one more than the photo before it.
    """
    planned: list[tuple[tuple[str, int, str], Planned]] = []
    for seq, item in enumerate(items, 1):
        code, position, name = item.code or "", item.position, ""
        if item.error is None and item.code is None:
            try:
                code, named = code_from_filename(item.filename, pattern)
            except AppError as error:
                item = replace(item, error=error)
            else:
                position = position if position is not None else named
                name = _short_name(item.filename).casefold()
        planned.append(((code, position or 0, name), Planned(seq, item, code, position)))
    planned.sort(key=lambda pair: pair[0])  # stable: ties keep the request's order
    ordered: list[Planned] = []
    last_asked: dict[str, int] = {}
    for _key, p in planned:
        if p.position is not None and p.item.error is None:
            position = max(p.position, last_asked.get(p.code, 0) + 1)
            last_asked[p.code] = position
            p = replace(p, position=position)
        ordered.append(p)
    return ordered


def _placement(asked: int | None, last: int, before: int | None) -> int:
    """Where a photo lands among its code's ``last`` photos (positions stay 1..n).

    It goes to the position it asks for, or to the end (the next free one) when it asks for none
    or for a place past the end; but never after ``before``, the first photo that asked for a
    later place than it did (or, for a photo asking for none, the first still waiting for its
    place). So ``X_3`` then ``X_2`` then ``X`` end as X, X_2, X_3; the photos from that position
    on move down one.
    """
    position = last + 1 if asked is None else min(asked, last + 1)
    return position if before is None else min(position, before)


class _Leases:
    """Who runs which batch, told by PostgreSQL itself.

    A running batch is held by a session advisory lock (``import-hold-batch``) on one connection
    per pool, shared by every batch the process runs at once: taken when the first batch starts,
    given back when the last ends, so ten concurrent uploads hold one connection, not ten (ten
    would starve the pool they store through). When the process dies, even by SIGKILL, the
    kernel closes its sockets, PostgreSQL ends the session and drops its locks: a reader who
    finds a ``running`` batch's lock free knows its runner is gone (``import-settle-batch``).
    Exact, with no heartbeat to write and no timeout to guess.
    """

    _by_pool: ClassVar[dict[int, _Leases]] = {}

    def __init__(self, pool: asyncpg.Pool, url: str | None) -> None:
        self.pool = pool
        self.url = url
        self.conn: asyncpg.Connection | None = None
        self.own = False  # a connection of its own rather than one of the pool's
        self.batches: set[int] = set()
        self.lock = asyncio.Lock()  # one statement at a time on the shared connection

    @classmethod
    def of(cls, pool: asyncpg.Pool, url: str | None) -> _Leases:
        # Keyed by id(): an entry holds its pool, so the id is not reused while it exists; the
        # last batch's end drops the entry. (A start racing that end may open a second lease
        # connection for a while: harmless.)
        return cls._by_pool.setdefault(id(pool), cls(pool, url))

    async def start(self, **batch: Any) -> int:
        """Create the batch and hold it, in one transaction: nobody ever sees it unheld."""
        async with self.lock:
            if self.conn is not None and _dead(self.conn):
                await self._disconnect()  # the session went away, and its locks with it
            self._by_pool.setdefault(id(self.pool), self)
            try:
                if self.conn is None:
                    self.conn = await self._connect()
                async with self.conn.transaction():
                    batch_id = await db.queries.import_create_batch(self.conn, **batch)
                    await db.queries.import_hold_batch(self.conn, id=batch_id)
            except BaseException:
                if self.conn is None or _dead(self.conn) or not self.batches:
                    await self._disconnect()
                raise
            self.batches.add(batch_id)
            return batch_id

    async def hold(self, batch_id: int) -> bool:
        """Hold an existing batch (an import job's); False when a live runner holds it."""
        async with self.lock:
            if batch_id in self.batches:
                return False  # this process runs it already (a lock is re-entrant in a session)
            if self.conn is not None and _dead(self.conn):
                await self._disconnect()
            self._by_pool.setdefault(id(self.pool), self)
            try:
                if self.conn is None:
                    self.conn = await self._connect()
                held = await db.queries.import_try_hold_batch(self.conn, id=batch_id)
            except BaseException:
                if self.conn is None or _dead(self.conn) or not self.batches:
                    await self._disconnect()
                raise
            if held:
                self.batches.add(batch_id)
            elif not self.batches:
                await self._disconnect()
            return bool(held)

    async def end(self, batch_id: int) -> None:
        async with self.lock:
            self.batches.discard(batch_id)
            if self.conn is None:
                return
            try:
                await db.queries.import_release_batch(self.conn, id=batch_id)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # The session is gone, and its locks with it: the next start opens another.
                log.warning(json.dumps({"event": "import_lease_lost", "batch_id": batch_id}))
            if _dead(self.conn) or not self.batches:
                await self._disconnect()

    async def _connect(self) -> asyncpg.Connection:
        # A pool of one connection would be starved by the lease: use a connection of its own.
        self.own = self.pool.get_max_size() < 2 and bool(self.url)
        conn = await (asyncpg.connect(self.url) if self.own else self.pool.acquire())
        try:
            await db.queries.import_lease_keepalive(conn)
        except BaseException:
            await (conn.close() if self.own else self.pool.release(conn))
            raise
        return conn

    async def _disconnect(self) -> None:
        conn, self.conn = self.conn, None
        if self._by_pool.get(id(self.pool)) is self and not self.batches:
            del self._by_pool[id(self.pool)]
        if conn is None or _dead(conn):
            return
        if self.own:
            await conn.close()
        else:
            await self.pool.release(conn)  # asyncpg's reset unlocks whatever is still held


async def hold_batch(pool: asyncpg.Pool, settings: Settings, batch_id: int) -> bool:
    """Take the lease on an existing batch (an import job's); False when a live runner has it."""
    return await _Leases.of(pool, settings.database_url).hold(batch_id)


async def release_batch(pool: asyncpg.Pool, settings: Settings, batch_id: int) -> None:
    await _Leases.of(pool, settings.database_url).end(batch_id)


def _dead(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True  # a pool's connection that died: asyncpg gave it back to its pool already


class _DuplicateRace(Exception):
    """Another import stored the same bytes under the same code between our check and insert."""


def _internal() -> AppError:
    return AppError(500, "internal_error", "The file could not be imported because of an error "
                    "on our side; it has been logged.")


def _duplicate(seq: int, filename: str, existing: int | None, code: str) -> Outcome:
    return Outcome(seq, filename, DUPLICATE, existing, None,
                   f"The same file is already image {existing} of product {code}.", None,
                   {"existing_id": existing})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_and_hash(load: Callable[[], bytes]) -> tuple[bytes, str]:
    data = load()
    return data, _sha256(data)


# --- reports ------------------------------------------------------------------------------------


async def batch_report(
    conn: asyncpg.Connection, batch_id: int, public_url: str
) -> dict[str, Any] | None:
    """The stored report of a batch: counts and one line per file, with the records of the
    files accepted (or found already there) when they still exist. A batch left ``running`` by a
    runner that is gone becomes ``interrupted`` here, when first read."""
    await db.queries.import_settle_batch(conn, id=batch_id)
    batch = await db.queries.import_get_batch(conn, id=batch_id)
    if batch is None:
        return None
    rows = [r async for r in db.queries.import_batch_items(conn, batch_id=batch_id)]
    ids = sorted({r["image_id"] for r in rows if r["image_id"] is not None})
    # (an empty id list simply finds nothing)
    records = {
        r["id"]: image_record(r, public_url)
        async for r in db.queries.import_get_records(conn, ids=ids)
    }
    items = []
    for r in rows:
        line: dict[str, Any] = {"seq": r["seq"], "filename": r["filename"],
                                "outcome": r["outcome"]}
        if r["outcome"] == REJECTED:
            line.update(code=r["code"], message=r["message"], status=r["status"],
                        details=r["details"])
        else:
            line["image_id"] = r["image_id"]
            if r["outcome"] == DUPLICATE:
                line["message"] = r["message"]
            line["record"] = records.get(r["image_id"])
        items.append(line)
    return {
        "id": batch["id"],
        "source": batch["source"],
        "status": batch["status"],
        "importer": batch["importer"],
        "importer_id": batch["importer_id"],
        "created_at": iso(batch["created_at"]),
        "finished_at": iso(batch["finished_at"]),
        "accepted": batch["accepted"],
        "duplicate": batch["duplicate"],
        "rejected": batch["rejected"],
        # A job's: the files it holds (so "40 of 200" can be shown), and why it was
        # interrupted when it was; null for an import run in its request.
        "files": batch["files"],
        "reason": batch["reason"],
        "items": items,
    }


async def get_batch_report(pool: asyncpg.Pool, batch_id: int, public_url: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        report = await batch_report(conn, batch_id, public_url)
    if report is None:
        raise AppError(404, "not_found", "There is no import with this id.")
    return report


# --- the sources, as use cases ------------------------------------------------------------------

async def import_files(
    pool: asyncpg.Pool,
    settings: Settings,
    executor: Executor,
    actor: Identity,
    files: list[ImportItem],
    fields: Fields = Fields(),  # noqa: B008 - frozen dataclass: a shared default is safe
    source: str = "upload",
) -> dict[str, Any]:
    """``POST /images``: the uploaded files, with the request's fields applied to each."""
    return await ImportRun(pool, settings, executor, actor, source).run(
        fields.apply(item) for item in files
    )


async def import_archive(
    pool: asyncpg.Pool,
    settings: Settings,
    executor: Executor,
    actor: Identity,
    archive_path: Path | None,
    manifest: bytes | None,
) -> dict[str, Any]:
    """``POST /imports``: a ZIP and/or a CSV manifest.

    With both, the manifest's rows come first (their ``file`` names archive members), then the
    archive's other members, named by the file-name pattern. A manifest alone can only use
    ``url`` rows. An unreadable archive or manifest is refused whole (4xx) before anything is
    imported.
    """
    rows = parse_manifest(manifest, settings.zip_max_members) if manifest is not None else None
    # Opening reads the central directory from disk: a thread, not the event loop.
    archive = (
        await asyncio.to_thread(_open_archive, archive_path, settings)
        if archive_path is not None else None
    )
    try:
        items = archive_items(archive, rows, settings.max_upload_bytes)
        source = "archive" if archive is not None else "manifest"
        return await ImportRun(pool, settings, executor, actor, source).run(items)
    finally:
        if archive is not None:
            archive.close()


def open_archive(path: Path, settings: Settings) -> ZipArchive:
    """A ZIP with this service's limits (raises ``AppError`` when it cannot be read)."""
    return _open_archive(path, settings)


def _open_archive(path: Path, settings: Settings) -> ZipArchive:
    return ZipArchive(
        path,
        max_member=settings.max_upload_bytes,
        max_total=settings.zip_max_total_mb * 1024 * 1024,
        max_members=settings.zip_max_members,
    )


def archive_items(
    archive: ZipArchive | None, rows: list | None, limit: int, folder: Path | None = None
) -> list[ImportItem]:
    items: list[ImportItem] = []
    used: set[str] = set()
    if rows is not None:
        items, used = manifest_items(rows, archive, folder, limit)
    if archive is not None:
        items += [archive.item(i) for i in archive.members() if i.filename not in used]
    return items


@dataclass
class PathPlan:
    """What ``ecogram import PATH...`` will read: the items, the archives to close after, and
    the files skipped in folders because they are not images."""

    items: list[ImportItem]
    archives: list[ZipArchive]
    skipped: list[Path]


def plan_paths(paths: list[Path], settings: Settings, fields: Fields = Fields()) -> PathPlan:  # noqa: B008
    """Expand command-line paths: image files, folders (recursive), ``.zip`` and ``.csv``.

    A CSV's ``file`` column is relative to the CSV's folder. Raises ``AppError`` for a path that
    does not exist, or an archive/manifest that cannot be read.
    """
    limit = settings.max_upload_bytes
    plan = PathPlan([], [], [])
    try:
        for path in paths:
            if path.is_dir():
                images, skipped = walk_folder(path)
                plan.items += [file_item(p, limit, str(p.relative_to(path))) for p in images]
                plan.skipped += skipped
            elif not path.is_file():
                raise AppError(404, "not_found", f"{path} does not exist.")
            elif path.suffix.lower() == ".zip":
                archive = _open_archive(path, settings)
                plan.archives.append(archive)
                plan.items += archive_items(archive, None, limit)
            elif path.suffix.lower() == ".csv":
                rows = parse_manifest(path.read_bytes(), settings.zip_max_members)
                plan.items += archive_items(None, rows, limit, path.parent)
            else:
                plan.items.append(file_item(path, limit, path.name))
    except BaseException:
        for archive in plan.archives:
            archive.close()
        raise
    # Fields given on the command line apply to everything, manifest rows included.
    plan.items = [fields.apply(item) for item in plan.items]
    return plan


async def find_importer(conn: asyncpg.Connection, email: str) -> Identity:
    """The user named by ``--as EMAIL``: must exist, be enabled and be importer or above."""
    user = await db.queries.import_find_user(conn, email=email)
    if user is None:
        raise AppError(404, "not_found", f"There is no user {email}.")
    if user["disabled"]:
        raise AppError(403, "forbidden", f"The user {email} is disabled.")
    if user["role"] not in ROLES or not allows(user["role"], "importer"):
        raise AppError(403, "forbidden", f"The user {email} is a {user['role']}; importing "
                       "needs the importer role or above.")
    return Identity(user["id"], user["email"], user["name"], user["role"])
