"""The ``ecogram`` command: serve, migrate and the staff tools."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence

from ecogram import db
from ecogram.app import resolve_database, resolve_secret_key
from ecogram.settings import Settings, SettingsError, served_url

log = logging.getLogger("ecogram")

Command = Callable[[argparse.Namespace, Settings], int]

DESCRIPTION = "E-co Gram: the image back office and image CDN. Settings come from ECOGRAM_* " \
    "environment variables (see the README); \"ecogram COMMAND --help\" tells more."


class UsageError(Exception):
    """An ordinary mistake on the command line: one sentence, exit status 2, no traceback."""


def configure_logging(level: str, *, human: bool) -> None:
    """JSON lines on stderr. A person's command (import, demo, export...) shows warnings and
    errors only: the machine lines (embedded database, migrations) belong in a server's log."""
    if human and level != "debug":
        level = max(level, "warning", key=("info", "warning", "error").index)
    logging.basicConfig(level=level.upper(), format="%(message)s", stream=sys.stderr)
    # pgserver narrates every pg_ctl call at INFO; its warnings are what matter.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # pgqueuer (import jobs) narrates each retry and dispatch; ecogram.jobs logs them as JSON.
    logging.getLogger("pgqueuer").setLevel(logging.WARNING)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number above zero")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecogram", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the web service",
        description="Run the web service: migrate the database once, then serve on HOST:PORT "
                    "with N worker processes (a worker that dies is restarted).")
    serve.add_argument("--host", help="address to listen on (default: ECOGRAM_HOST)")
    serve.add_argument("--port", type=_port, help="port to listen on (default: ECOGRAM_PORT)")
    serve.add_argument(
        "--workers", type=_positive, metavar="N",
        help="processes sharing the port (default: ECOGRAM_WORKERS)"
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser(
        "migrate", help="apply pending database migrations",
        description="Apply pending database migrations (safe to run twice).")
    migrate.set_defaults(handler=cmd_migrate)

    create_user = commands.add_parser(
        "create-user", help="create a staff account",
        description="Create a staff account. The password is asked twice on the terminal, or "
                    "read from the first line of standard input with --password-stdin.")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    create_user.add_argument(
        "--role", required=True, choices=("admin", "reviewer", "importer", "viewer")
    )
    create_user.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from the first line of standard input (default: prompt)",
    )
    create_user.set_defaults(handler=cmd_create_user)

    importer = commands.add_parser(
        "import", help="import photos: files, folders (recursive), .zip archives, .csv manifests",
        description="Import photos straight into the database as an existing user: files, "
                    "folders (recursive), .zip archives and .csv manifests.")
    importer.add_argument("paths", nargs="+", metavar="PATH")
    importer.add_argument("--as", dest="as_email", required=True, metavar="EMAIL",
                          help="the importer (an existing user, importer role or above)")
    importer.add_argument("--code", help="product code for every file (default: file names)")
    importer.add_argument("--product", help="product name for every file")
    importer.set_defaults(handler=cmd_import)

    demo = commands.add_parser(
        "demo", help="import a small generated catalogue",
        description="Draw a small catalogue and import it as the user \"Demo\"; then run "
                    "\"ecogram serve\" and register: the first account registered is admin.")
    demo.set_defaults(handler=cmd_demo)

    export = commands.add_parser("export", help="export approved photos to a shop platform")
    export.add_argument("--format", required=True,
                        choices=("shopify", "woocommerce", "magento", "json", "zip", "vtex",
                                 "google", "mercadolivre", "nuvemshop", "renditions"))
    export.add_argument("--channel", metavar="ID",
                        help="renditions: the channel whose renditions to list")
    export.add_argument("--include-not-ready", action="store_true",
                        help="channel formats: also products not ready, with their findings")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--code", action="append", metavar="CODE",
                        help="only these product codes (comma-separated or repeated)")
    export.add_argument("--since", metavar="WHEN",
                        help="only photos approved or updated since (ISO 8601 date/time)")
    export.add_argument("--status", default="approved",
                        choices=("approved", "pending", "rejected"))
    export.set_defaults(handler=cmd_export)

    sign = commands.add_parser(
        "sign-url", help="sign an /img URL so it may use sizes outside ECOGRAM_ALLOWED_SIZES",
        description="Print a signed /img URL, on ECOGRAM_PUBLIC_URL, that may use sizes outside "
                    "ECOGRAM_ALLOWED_SIZES.")
    sign.add_argument("path", metavar="PATH", help="e.g. /img/SKU-123 or /img/SKU-123/2")
    for name in ("w", "h", "dpr", "fit", "g", "fmt", "q", "bg", "v"):
        sign.add_argument(f"--{name}", metavar=name.upper())
    sign.set_defaults(handler=cmd_sign_url)
    add_worker_command(commands)
    add_storage_parser(commands)

    channels = commands.add_parser(
        "channels", help="sales channels (docs/channels.md)",
        description="Sales channels: \"ecogram channels backfill\" measures the product, "
                    "background and fill of every photo not measured yet, for readiness.")
    channel_actions = channels.add_subparsers(dest="action", required=True, metavar="ACTION")
    channel_actions.add_parser(
        "backfill", help="measure every photo not measured yet for channel readiness "
        "(resumable: stop it any time, run it again)"
    ).set_defaults(handler=cmd_channels_backfill)

    calibrate = commands.add_parser(
        "calibrate", help="find the calibrated quality of approved photos that lack a current one",
        description="Calibrated quality (docs/delivery.md) for every approved photo that has "
                    "none for its current version, or one found by an older calibration or "
                    "for another ECOGRAM_QUALITY_TARGET: the same search as at approval, one "
                    "photo at a time. Safe to stop and run again: it resumes with what is "
                    "still missing.")
    calibrate.add_argument("--all", dest="everything", action="store_true",
                           help="calibrate every approved photo again, current or not (an "
                                "interrupted run starts over)")
    calibrate.add_argument("--stale", dest="everything", action="store_false",
                           help="only photos without a current result (the default)")
    calibrate.set_defaults(handler=cmd_calibrate)

    parser.set_defaults(commands=commands.choices)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """argparse, naming the option it does not know, with the usage of the command it follows.

    (Plain argparse answers `ecogram --bogus` with "the following arguments are required:
    COMMAND" and `ecogram serve --prot 1` with the top-level usage.)
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    for arg in argv:
        if not arg.startswith("-"):
            break
        if arg not in ("-h", "--help"):
            parser.error(f"unrecognized option {arg} (options go after the command)")
    args, extras = parser.parse_known_args(argv)
    if extras:
        args.commands[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _setting_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The command line's say over the settings (serve's --host, --port, --workers)."""
    return {name: value for name in ("host", "port", "workers")
            if (value := getattr(args, name, None)) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env(**_setting_overrides(args))
    except SettingsError as exc:
        print(f"ecogram: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, human=args.command not in ("serve", "worker"))
    try:
        return args.handler(args, settings)
    except (UsageError, SettingsError) as exc:
        print(f"ecogram: {exc}", file=sys.stderr)
        return 2
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


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("there is no terminal to ask the password on; give it on standard "
                         "input with --password-stdin")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        print("ecogram: the passwords differ", file=sys.stderr)
        return None
    return first


async def _create_user(url: str, args: argparse.Namespace, password: str) -> dict:
    from ecogram.catalog import accounts

    conn = await db.connect(url)
    try:
        await db.migrate(conn)
        return await accounts.create_user(
            conn, email=args.email, name=args.name, role=args.role, password=password
        )
    finally:
        await conn.close()


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from ecogram.errors import AppError

    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    settings = resolve_database(settings)
    try:
        user = asyncio.run(_create_user(settings.database_url, args, password))
    except AppError as error:
        # The public message only: never the password, whatever the rule that refused it.
        print(f"ecogram: {error.message}", file=sys.stderr)
        return 1
    print(f"created user {user['id']} <{user['email']}> with role {user['role']}")
    return 0


def _listen(settings: Settings) -> socket.socket:
    from ecogram import server

    where = f"{settings.host}:{settings.port}"
    try:
        return server.listen(settings.host, settings.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (f"{where} is already in use (another `ecogram serve`?); choose another "
                      "port with --port or ECOGRAM_PORT")
        elif exc.errno == errno.EACCES:
            reason = f"not allowed to listen on {where} (ports below 1024 need privileges)"
        elif exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
                exc, socket.gaierror):
            reason = (f"cannot listen on {where}: {settings.host} is not an address of this "
                      "machine (see --host or ECOGRAM_HOST)")
        else:
            reason = f"cannot listen on {where}: {exc.strerror or exc}"
        raise UsageError(reason) from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Bind, migrate once, say where to go, then serve: here, or under gunicorn's master."""
    from ecogram import server

    sock = _listen(settings)  # first: a port in use is said before anything starts
    host, port = sock.getsockname()[:2]
    url = served_url(settings.host, port)
    if not os.environ.get("ECOGRAM_PUBLIC_URL", "").strip():
        # Unset: public URLs follow the address served (--port 0: the port the system chose).
        settings = settings.replace(public_url=url)
    # Done once, in this process, before any worker starts: the workers then share one
    # database, one schema and one secret key.
    settings = resolve_database(resolve_secret_key(settings))
    asyncio.run(_migrate(settings.database_url))
    log.info(json.dumps({"event": "serving", "url": url, "public_url": settings.public_url,
                         "host": host, "port": port, "workers": settings.workers}))
    print(f"E-co Gram is serving at {url} ({settings.workers} "
          f"worker{'s' if settings.workers > 1 else ''}); open it in a browser. "
          "Stop with Ctrl+C.", flush=True)
    if settings.workers == 1:
        server.serve_here(settings, sock)
    else:
        server.serve_workers(settings, sock)  # gunicorn's master: ends with SystemExit(0)
    return 0


# --- import and demo ------------------------------------------------------------------------


class ProgressBar:
    """A plain progress bar on stderr: redrawn in place on a terminal, a line per tenth else."""

    WIDTH = 30

    def __init__(self, total: int, stream=None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_tenth = -1

    def update(self, outcome) -> None:
        self.done += 1
        self.counts[outcome.outcome] += 1
        tenth = self.done * 10 // self.total
        if not self.tty and tenth == self._last_tenth and self.done != self.total:
            return
        self._last_tenth = tenth
        filled = self.WIDTH * self.done // self.total
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}  "
                + "  ".join(f"{k} {v}" for k, v in self.counts.items()))
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def print_summary(report: dict) -> None:
    print(f"import {report['id']}: {report['accepted']} accepted, {report['duplicate']} "
          f"duplicate, {report['rejected']} rejected")
    for line in report["items"]:
        if line["outcome"] == "rejected":
            print(f"  rejected  {line['filename']}: {line['message']} ({line['code']})")
        elif line["outcome"] == "duplicate":
            print(f"  duplicate {line['filename']}: already image {line['image_id']}")
        else:
            warnings = [w["code"] for w in (line["record"] or {}).get("qc", {}).get("warnings", [])]
            if warnings:
                print(f"  accepted  {line['filename']} with warnings: {', '.join(warnings)}")


async def _with_pool(settings: Settings, work):
    from concurrent.futures import ThreadPoolExecutor

    conn = await db.connect(settings.database_url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    from ecogram import storage

    storage.configure(settings.storage_timeout)
    pool = await db.create_pool(settings.database_url, 1, 4)
    try:
        with ThreadPoolExecutor(settings.render_threads, thread_name_prefix="vips") as executor:
            return await work(pool, executor)
    finally:
        await storage.close()  # the object-store clients this command opened
        await pool.close()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from ecogram.catalog import imports
    from ecogram.catalog.sources import parse_fields
    from ecogram.errors import AppError

    settings = resolve_database(settings)

    async def work(pool, executor) -> dict:
        async with pool.acquire() as conn:
            actor = await imports.find_importer(conn, args.as_email)
        fields = parse_fields({"code": args.code, "product": args.product})
        plan = await asyncio.to_thread(
            imports.plan_paths, [Path(p) for p in args.paths], settings, fields
        )
        try:
            if plan.skipped:
                print(f"skipped {len(plan.skipped)} files that are not images "
                      f"(e.g. {plan.skipped[0]})", file=sys.stderr)
            bar = ProgressBar(len(plan.items))
            run = imports.ImportRun(pool, settings, executor, actor, "cli", on_progress=bar.update)
            return await run.run(plan.items)
        finally:
            for archive in plan.archives:
                archive.close()

    try:
        report = asyncio.run(_with_pool(settings, work))
    except AppError as error:
        print(f"ecogram: {error.message}", file=sys.stderr)
        return 1
    print_summary(report)
    return 0 if report["rejected"] == 0 else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ecogram.catalog import accounts, demo

    settings = resolve_database(settings)

    async def work(pool, executor) -> tuple[dict, bool]:
        bar = ProgressBar(demo.PHOTO_COUNT)
        report = await demo.run_demo(pool, settings, executor, on_progress=bar.update)
        async with pool.acquire() as conn:
            return report, await accounts.admin_exists(conn)

    report, has_admin = asyncio.run(_with_pool(settings, work))
    print_summary(report)
    url = served_url(settings.host, settings.port)
    print("The broken SOCK-005 photo is refused on purpose; the others wait for review.")
    # The README starts `ecogram serve` first: say what to open, not to start it again.
    if has_admin:
        print(f"Next: with `ecogram serve` running, open {url}/login (or the address it "
              "printed) and sign in.")
    else:
        print(f"Next: with `ecogram serve` running, open {url}/register (or the address it "
              "printed): nobody is admin yet, so the first account registered there becomes "
              "admin.")
    return 0


async def _export(settings: Settings, query, sink) -> int:
    import getpass

    from ecogram.catalog import exports

    # One connection, lent for each short read: none is held while the sink (a pipe) waits.
    pool = await db.create_pool(settings.database_url, 1, 1)
    try:
        async def write(data: bytes) -> None:
            sink.write(data)

        run = (exports.run_channel_export if isinstance(query, exports.ChannelExportQuery)
               else exports.run_export)
        return await run(pool.acquire, None, query, settings.public_url, write,
                         actor_name=f"command line ({getpass.getuser()})")
    finally:
        await pool.close()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Stream the export to a file (written beside it, then renamed) or to stdout."""
    import datetime as dt
    from pathlib import Path

    from ecogram.catalog.exports import CHANNEL_FORMATS, ChannelExportQuery, ExportQuery
    from ecogram.errors import AppError

    codes = tuple(dict.fromkeys(
        c.strip() for value in args.code or () for c in value.split(",") if c.strip()))
    try:
        since = dt.datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        print("ecogram: --since must be an ISO 8601 date or date-time", file=sys.stderr)
        return 2
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    settings = resolve_database(settings)
    try:
        if args.format in CHANNEL_FORMATS:
            query = ChannelExportQuery.make(
                args.format, settings.channel_profiles, channel=args.channel,
                codes=codes or None, since=since, status=args.status,
                include_not_ready=args.include_not_ready)
        elif args.channel or args.include_not_ready:
            print("ecogram: --channel and --include-not-ready are for the channel formats",
                  file=sys.stderr)
            return 2
        else:
            query = ExportQuery(args.format, codes or None, since, args.status)
        if args.output in (None, "-"):
            count = asyncio.run(_export(settings, query, sys.stdout.buffer))
            sys.stdout.buffer.flush()
        else:
            target = Path(args.output)
            partial = target.with_name(target.name + ".partial")
            with partial.open("wb") as sink:
                count = asyncio.run(_export(settings, query, sink))
            partial.replace(target)
    except AppError as error:
        fields = (error.details or {}).get("fields") or {}
        said = "; ".join(f"{name}: {rule}" for name, rule in fields.items())
        print(f"ecogram: {error.message}" + (f" ({said})" if said else ""), file=sys.stderr)
        return 1
    print(f"exported {count} images ({args.format})", file=sys.stderr)
    return 0


def cmd_sign_url(args: argparse.Namespace, settings: Settings) -> int:
    """Print the signed URL (on ECOGRAM_PUBLIC_URL) for PATH with the given options."""
    from ecogram.catalog.delivery import sign_path
    from ecogram.errors import AppError

    if not args.path.startswith("/img/"):
        print("ecogram: PATH must start with /img/", file=sys.stderr)
        return 2
    params = {name: value for name in ("w", "h", "dpr", "fit", "g", "fmt", "q", "bg", "v")
              if (value := getattr(args, name)) is not None}
    settings = resolve_secret_key(settings)
    try:
        signed = sign_path(settings.secret_key or "", args.path, params)
    except AppError as error:
        print(f"ecogram: {error.message}", file=sys.stderr)
        return 2
    print(f"{settings.public_url}{signed}")
    return 0


# --- worker: import jobs on this machine ---------------------------------------------------


def add_worker_command(commands) -> None:
    worker = commands.add_parser(
        "worker", help="run import jobs on this machine (beside or instead of ecogram serve)",
        description="Run import jobs from the queue until stopped. SIGTERM or Ctrl+C: the "
                    "running jobs store the files in hand and go back to the queue, for another "
                    "worker; a worker killed outright has its jobs resumed by another after "
                    "ECOGRAM_JOB_STALL_SECONDS.")
    worker.add_argument(
        "--jobs", type=_positive, metavar="N",
        help="jobs run at once (default: ECOGRAM_JOB_WORKERS, at least 1)")
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from ecogram import jobs

    jobs_at_once = args.jobs or max(settings.job_workers, 1)
    settings = resolve_database(settings)

    async def work() -> None:
        await _migrate(settings.database_url)
        pool = await db.create_pool(settings.database_url, 1, jobs.pool_size(jobs_at_once),
                                    settings.db_timeout)
        try:
            with ThreadPoolExecutor(settings.render_threads,
                                    thread_name_prefix="vips") as executor:
                worker = jobs.Worker(pool, settings, executor, jobs_at_once)
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, worker.stop)
                print(f"ecogram worker: running import jobs, {jobs_at_once} at a time. Stop "
                      "with Ctrl+C or SIGTERM.", file=sys.stderr, flush=True)
                await worker.run()
        finally:
            await pool.close()

    asyncio.run(work())
    return 0


# --- ecogram storage: where originals and masters are kept (docs/storage.md) ---------------------

def add_storage_parser(commands) -> None:
    store = commands.add_parser(
        "storage", help="move originals between PostgreSQL and an object store; sweep orphans",
        description="Originals and masters live in PostgreSQL or an S3-compatible object store "
                    "(ECOGRAM_STORAGE_URL; see docs/storage.md).")
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    move = actions.add_parser(
        "migrate", help="move every photo's original and master to another store",
        description="Copy each photo's objects to the target, check their sha256, point the "
                    "record at the target, delete the source copy. Safe to interrupt and run "
                    "again. Set ECOGRAM_STORAGE_URL to the target too, so new imports go there.")
    move.add_argument("--to", required=True, metavar="URL", help="postgres or s3://bucket/prefix")
    move.set_defaults(handler=cmd_storage_migrate)
    sweep = actions.add_parser(
        "sweep", help="remove stored objects that no record names",
        description="Remove the objects no record names that are older than --min-age (a day "
                    "by default), in every store a record names and in ECOGRAM_STORAGE_URL's.")
    sweep.add_argument("--min-age", type=float, default=24 * 3600, metavar="SECONDS",
                       help="only objects written at least this long ago (default: 86400)")
    sweep.set_defaults(handler=cmd_storage_sweep)
    store.set_defaults(commands=commands.choices)


def cmd_storage_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from types import SimpleNamespace

    from ecogram import storage
    from ecogram.catalog import originals

    try:
        target = storage.location(args.to)
    except ValueError as exc:
        raise UsageError(f"--to {exc} (not {args.to!r})") from None
    settings = resolve_database(settings)

    async def work(pool, executor) -> originals.Moved:
        async with pool.acquire() as conn:
            total = await db.queries.storage_pending_count(conn, target=target)
        bar = ProgressBar(total)
        bar.counts = {"moved": 0, "skipped": 0}
        seen = [0, 0]

        def progress(moved: originals.Moved) -> None:
            kind = "moved" if moved.moved > seen[0] else "skipped"
            seen[:] = [moved.moved, len(moved.skipped)]
            bar.update(SimpleNamespace(outcome=kind))

        return await originals.migrate(pool, target, progress)

    try:
        moved = asyncio.run(_with_pool(settings, work))
    except storage.StoreUnavailable:
        print("ecogram: the object store cannot be reached; run the same command again later "
              "(what was moved stays moved).", file=sys.stderr)
        return 1
    print(f"storage migrate: {moved.moved} photos moved to {target}"
          + (f", {len(moved.skipped)} changed meanwhile (run again to move them)"
             if moved.skipped else ""))
    return 0 if not moved.skipped else 1


def cmd_storage_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from ecogram import storage
    from ecogram.catalog import originals

    settings = resolve_database(settings)

    async def work(pool, executor) -> int:
        return await originals.sweep(pool, settings.storage_url, args.min_age)

    try:
        removed = asyncio.run(_with_pool(settings, work))
    except storage.StoreUnavailable:
        print("ecogram: the object store cannot be reached; try again later.", file=sys.stderr)
        return 1
    print(f"storage sweep: {removed} objects no record names removed")
    return 0
def cmd_channels_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Measure product, background and fill of every photo that has no geometry yet."""
    from ecogram.catalog import channels
    from ecogram.catalog.imports import qc_limits

    settings = resolve_database(settings)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"{done}/{total} photos", file=sys.stderr, flush=True)

    async def work(pool, executor) -> dict:
        return await channels.backfill(pool, executor, qc_limits(settings),
                                       concurrency=settings.render_threads,
                                       on_progress=progress)

    counts = asyncio.run(_with_pool(settings, work))
    if not counts["measured"] and not counts["failed"]:
        print("nothing to measure: every photo has its geometry")
        return 0
    print(f"measured {counts['measured']} photos"
          + (f"; {counts['failed']} could not be read (see the log)" if counts["failed"] else ""))
    return 0 if not counts["failed"] else 1


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    """Calibrated quality for the approved photos lacking a current one (or all of them)."""
    from types import SimpleNamespace

    from ecogram.catalog import calibration

    settings = resolve_database(settings)
    if settings.quality_target <= 0 or not settings.quality_bounds:
        raise UsageError("calibration is off (ECOGRAM_QUALITY_TARGET=0 or "
                         "ECOGRAM_QUALITY_BOUNDS empty): nothing to calibrate")
    bar: list[ProgressBar] = []

    def progress(outcome: str, image_id: int, total: int) -> None:
        if not bar:
            bar.append(ProgressBar(total))
            bar[0].counts = {"calibrated": 0, "skipped": 0, "failed": 0}
        bar[0].update(SimpleNamespace(outcome=outcome))

    async def work(pool, executor) -> dict:
        return await calibration.backfill(pool, executor, settings,
                                          everything=args.everything, on_progress=progress)

    counts = asyncio.run(_with_pool(settings, work))
    if not any(counts.values()):
        print("nothing to calibrate: every approved photo has a current calibrated quality")
        return 0
    print(f"calibrate: {counts['calibrated']} photos calibrated"
          + (f", {counts['skipped']} changed or unapproved meanwhile" if counts["skipped"]
             else "")
          + (f", {counts['failed']} failed (see the log; run again to retry)"
             if counts["failed"] else ""))
    return 0 if not counts["failed"] else 1
