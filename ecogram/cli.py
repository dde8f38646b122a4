"""The ``ecogram`` command: serve, migrate and the staff tools."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from ecogram import db
from ecogram.app import create_app, resolve_database, resolve_secret_key
from ecogram.settings import Settings, SettingsError

log = logging.getLogger("ecogram")

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, Command] = {}


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s", stream=sys.stderr)
    # pgserver narrates every pg_ctl call at INFO; its warnings are what matter.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecogram", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the web service")
    serve.add_argument("--host", help="address to listen on (default: ECOGRAM_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: ECOGRAM_PORT)")
    serve.add_argument(
        "--workers", type=int, help="processes sharing the port (default: ECOGRAM_WORKERS)"
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ecogram: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return args.handler(args, settings)
    except db.SchemaTooNew as exc:
        print(f"ecogram: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


async def _migrate(url: str) -> list[int]:
    conn = await db.connect(url)
    try:
        return await db.migrate(conn)
    finally:
        await conn.close()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    settings = resolve_database(settings)
    applied = asyncio.run(_migrate(settings.database_url))
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.replace(
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers or settings.workers,
    )
    # Done once, in this process, before any worker starts: the workers then share one
    # database, one schema and one secret key.
    settings = resolve_database(resolve_secret_key(settings))
    asyncio.run(_migrate(settings.database_url))
    log.info(json.dumps({"event": "serving", "host": settings.host, "port": settings.port,
                         "workers": settings.workers}))
    if settings.workers == 1:
        _run_worker(settings, None)
        return 0
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(1024)
    sock.set_inheritable(True)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_run_worker, args=(settings, sock), name=f"ecogram-worker-{i}")
        for i in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.join()
    return 0


def _run_worker(settings: Settings, sock: socket.socket | None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed on Linux
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    app = create_app(settings, migrate=False)
    if sock is None:
        web.run_app(app, host=settings.host, port=settings.port, access_log=None, loop=loop,
                    print=None)
    else:
        web.run_app(app, sock=sock, access_log=None, loop=loop, print=None)
