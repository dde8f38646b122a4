"""create_app(settings): the one place where the service is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ecogram import db, i18n, jobs, keys, storage
from ecogram.auth.throttle import login_throttle_context
from ecogram.catalog import analytics, events, originals
from ecogram.catalog.channels import GeometryRecorder
from ecogram.catalog.delivery import Delivery
from ecogram.catalog.imports import qc_limits
from ecogram.imaging import vips
from ecogram.metrics import Metrics
from ecogram.middleware import make_request_context
from ecogram.redis_client import redis_context
from ecogram.routes import setup_routes
from ecogram.settings import Settings

log = logging.getLogger("ecogram")

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


def resolve_secret_key(settings: Settings) -> Settings:
    """Use ECOGRAM_SECRET_KEY, or a random key generated once and kept in the data directory."""
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secret_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: when two processes race, one writes and both then read the same key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(key)
    return settings.replace(secret_key=path.read_text().strip())


def resolve_database(settings: Settings) -> Settings:
    """Use DATABASE_URL, or start the embedded PostgreSQL in the data directory."""
    if settings.database_url:
        return settings
    url = db.start_embedded(settings.data_dir)
    log.info(json.dumps({"event": "embedded_database", "data_dir": str(settings.data_dir)}))
    return settings.replace(database_url=url)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> web.Application:
    settings = resolve_secret_key(settings or Settings.from_env())
    metrics = Metrics()
    app = web.Application(
        # The one middleware: the frame of every request (id, errors, headers, metrics, log).
        # Access is checked per route, where the route table registers each handler.
        middlewares=[make_request_context(metrics)],
        client_max_size=settings.max_request_mb * 1024 * 1024,
    )
    app[keys.settings] = settings
    app[keys.metrics] = metrics
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    i18n.setup(app, env)  # the pages' languages (pt_BR, en), dates and numbers
    app.cleanup_ctx.append(_database(migrate))
    app.cleanup_ctx.append(_storage)  # after _database: the sweep uses the pool
    app.cleanup_ctx.append(_vips_executor)
    app.cleanup_ctx.append(redis_context)  # the one Redis client (REDIS_URL), for both below
    app.cleanup_ctx.append(login_throttle_context)  # after _database: it uses the pool
    app.cleanup_ctx.append(_delivery)  # after the pool and the libvips pool it uses
    app.cleanup_ctx.append(_analytics)  # after _delivery: it counts the delivery's answers
    app.cleanup_ctx.append(_job_worker)  # after the pool and the libvips pool it uses
    app.cleanup_ctx.append(_geometry)  # channel readiness: measure approved/changed photos
    setup_routes(app)
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app


def _database(run_migrations: bool):
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = resolve_database(app[keys.settings])
        app[keys.settings] = settings
        pool = await db.create_pool(
            settings.database_url, settings.db_pool_min, settings.db_pool_max,
            settings.db_timeout,
        )
        try:
            async with pool.acquire() as conn:
                if run_migrations:
                    await db.migrate(conn)
                else:
                    current, newest = await db.schema_state(conn)
                    if current > newest:
                        raise db.SchemaTooNew(
                            f"database schema {current} is newer than this code's {newest}"
                        )
            app[keys.db_pool] = pool
            yield
        finally:
            await pool.close()

    return context


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Originals and masters (ecogram.storage): the object-store clients opened on this loop are
    closed at the end; the sweep of objects no record names runs in the background."""
    settings = app[keys.settings]
    storage.configure(settings.storage_timeout)
    sweeper = None
    if settings.storage_sweep_interval > 0:
        sweeper = asyncio.create_task(originals.sweep_forever(
            app[keys.db_pool], settings.storage_url, settings.storage_sweep_interval))
    yield
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await storage.close()


async def _vips_executor(app: web.Application) -> AsyncIterator[None]:
    """libvips releases the GIL, so a few threads use every core without blocking the loop."""
    vips.configure()  # one libvips thread per pool thread (see vips.configure)
    executor = ThreadPoolExecutor(
        max_workers=app[keys.settings].render_threads, thread_name_prefix="vips"
    )
    app[keys.vips_executor] = executor
    yield
    executor.shutdown(wait=True, cancel_futures=True)


async def _job_worker(app: web.Application) -> AsyncIterator[None]:
    """Import jobs, run in this process: ECOGRAM_JOB_WORKERS at once (0: none, they are left to
    `ecogram worker` processes). Their own pool, so a job never starves requests of connections
    (nor requests a job). Stopping lets a running job store the files in hand."""
    settings = app[keys.settings]
    if settings.job_workers == 0:
        yield
        return
    pool = await db.create_pool(settings.database_url, 1, jobs.pool_size(settings.job_workers),
                                settings.db_timeout)
    worker = jobs.Worker(pool, settings, app[keys.vips_executor], settings.job_workers)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        try:
            await task
        finally:
            await pool.close()


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    """/img: caches, the LISTEN connection and eager rendering, hooked to approvals/changes."""
    delivery = Delivery(
        app[keys.db_pool], app[keys.settings], app[keys.vips_executor], app[keys.metrics],
        redis=app.get(keys.redis),
    )
    await delivery.start()
    hooks = events.of(app)
    hooks.on_approved.append(delivery.on_approved)
    hooks.on_changed.append(delivery.on_changed)
    app[keys.delivery] = delivery
    yield
    hooks.on_approved.remove(delivery.on_approved)
    hooks.on_changed.remove(delivery.on_changed)
    await delivery.close()


async def _analytics(app: web.Application) -> AsyncIterator[None]:
    """The delivery's counts (catalog.analytics), flushed every ECOGRAM_ANALYTICS_FLUSH seconds
    and at the end, before the pool closes."""
    interval = app[keys.settings].analytics_flush
    if interval <= 0:
        yield
        return
    delivery = app[keys.delivery]
    counts = analytics.Counts()
    flusher = analytics.Flusher(app[keys.db_pool], counts, interval)
    delivery.counts = counts
    app[keys.analytics] = flusher
    flusher.start()
    yield
    delivery.counts = analytics.NoCounts()
    await flusher.stop()


async def _geometry(app: web.Application) -> AsyncIterator[None]:
    """Each approved or changed photo is measured for channel readiness (catalog.channels)."""
    recorder = GeometryRecorder(app[keys.db_pool], app[keys.vips_executor],
                                qc_limits(app[keys.settings]))
    hooks = events.of(app)
    hooks.on_approved.append(recorder.on_event)
    hooks.on_changed.append(recorder.on_event)
    app[keys.geometry] = recorder
    yield
    hooks.on_approved.remove(recorder.on_event)
    hooks.on_changed.remove(recorder.on_event)
    await recorder.close()
