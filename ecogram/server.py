"""`ecogram serve`'s HTTP server: the request-head deadline, one process or gunicorn's workers.

aiohttp bounds a connection that sends nothing only by its keep-alive timer, and bytes arriving do
not reset it; nothing bounds the time a client takes to finish a request's headers. A client
that sends half a request line and stalls held the connection for the whole keep-alive time
(75 s), and a few hundred such clients hold every connection a worker can take. Here a request
head must be complete within ECOGRAM_HEADER_TIMEOUT of its first byte (of the connection, for
the first request): a slower client gets a 408 and the connection is closed. Idle keep-alive
connections, request bodies and answers are not timed by it.

With several workers, gunicorn's master (gunicorn is the process manager, aiohttp's gunicorn
worker runs the app) forks them after the one migration and restarts any that dies; SIGTERM
stops them gracefully. One worker runs in this process, with no master.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from ecogram import logqueue
from ecogram.settings import Settings

log = logging.getLogger("ecogram.server")

# Idle time allowed between two requests of one connection (aiohttp's run_app default).
LINGERING_TIME = 2.0
KEEPALIVE_TIMEOUT = 75.0
# Time requests in flight get to finish at shutdown (gunicorn kills a worker after 30 s).
SHUTDOWN_TIMEOUT = 25.0

_REQUEST_TIMEOUT_BODY = json.dumps({"error": {
    "code": "request_timeout",
    "message": "The request headers did not arrive in time.",
    "details": {},
}}).encode()
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Cache-Control: no-store\r\n"
    b"Connection: close\r\n"
    b"Content-Length: " + str(len(_REQUEST_TIMEOUT_BODY)).encode() + b"\r\n\r\n"
    + _REQUEST_TIMEOUT_BODY
)


class HeadDeadlineHandler(RequestHandler):
    """aiohttp's connection handler, with a deadline on each request head.

    The deadline starts when the connection opens and again when the first byte of a later
    request arrives (a byte that is not part of a body being read), and ends when aiohttp has
    parsed a complete head. When it passes while the connection still waits for that head, the
    client gets a 408 and the connection closes. (A head whose first bytes arrive in the same
    packet as the end of the request before it is not timed here; the keep-alive timer still
    bounds it.)
    """

    def __init__(self, manager: web.Server, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False  # a byte of the awaited head arrived
        self._last_payload: Any = None  # the body of the last request parsed

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """HTTP the parser cannot read (a request line or header too long, a bad header) is the
        client's mistake: refused in the one JSON error shape, like every other refusal, where
        aiohttp would answer plain text. Server faults stay aiohttp's (logged, a bare 500)."""
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        reason = (getattr(exc, "message", None) or HTTPStatus(status).phrase)[:200]
        self.logger.debug("Unreadable request from %s: %s", request.remote, reason)
        response = web.json_response({"error": {
            "code": "bad_request", "message": f"The request cannot be read as HTTP: {reason}",
            "details": {}}}, status=status)
        response.force_close()
        return response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._last_payload = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a head is complete
            if self._messages:
                self._last_payload = self._messages[-1][1]
            self._disarm()
        elif data and not self._reading_body():
            if self._head_deadline is None:
                self._arm()
            self._head_started = True

    def _reading_body(self) -> bool:
        body = self._last_payload
        return (self._upgraded or self._payload_parser is not None
                or (body is not None and not body.is_eof()))

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self._loop.call_later(self._head_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self._head_started = False

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport is None or self._force_close:
            return
        if self._request_in_progress or self._messages:
            # An earlier (pipelined) request is still being answered: look again later.
            started, self._head_started = self._head_started, False
            self._arm()
            self._head_started = started
            return
        if self._head_started:
            peer = self.peername
            log.info(json.dumps({
                "event": "header_timeout", "seconds": self._head_timeout,
                "client": peer[0] if isinstance(peer, tuple) else None,
            }))
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.force_close()


class HeadDeadlineServer(web.Server):
    """aiohttp's low-level server, making HeadDeadlineHandler connections."""

    def __init__(self, handler: Any, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.head_timeout = head_timeout

    def __call__(self) -> RequestHandler:
        # self._kwargs: the handler settings the application and the runner gave (keep-alive,
        # access log, limits), the same aiohttp's own Server passes to RequestHandler.
        return HeadDeadlineHandler(self, loop=self._loop, head_timeout=self.head_timeout,
                                   **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose server times request heads (see HeadDeadlineHandler)."""

    def __init__(self, app: web.Application, *, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # runs the app's start-up; its handler settings
        return HeadDeadlineServer(
            made.request_handler, request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation, loop=asyncio.get_running_loop(),
            head_timeout=self._head_timeout, **made._kwargs,
        )


def make_runner(app: web.Application, settings: Settings) -> Runner:
    # lingering_time: after an answer sent before its body was read (a 413, a 408), aiohttp
    # reads and drops the rest of the body for at most this long before closing (default 10 s),
    # so a refused body keeps its socket 2 s, not 10.
    return Runner(app, head_timeout=settings.header_timeout, keepalive_timeout=KEEPALIVE_TIMEOUT,
                  lingering_time=LINGERING_TIME, access_log=None,
                  shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket; OSError (address in use...) for the caller to explain."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve_here(settings: Settings, sock: socket.socket) -> None:
    """One worker, in this process, until SIGTERM or SIGINT; requests in flight then finish."""
    from ecogram.app import create_app

    async def serve() -> None:
        runner = make_runner(create_app(settings, migrate=False), settings)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    stop_log_queue = logqueue.start()
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(serve())
    finally:
        stop_log_queue()  # the lines still queued are written before the process ends


def serve_workers(settings: Settings, sock: socket.socket) -> None:
    """gunicorn's master over ``settings.workers`` aiohttp workers; ends with SystemExit(0)."""
    GunicornApp(settings, sock).run()


class GunicornLog(glogging.Logger):
    """gunicorn's own messages ("Booting worker with pid", "Worker was sent SIGKILL") as JSON
    lines through the service's logging, like every other event."""

    def setup(self, cfg: Any) -> None:
        self.cfg = cfg  # no handlers of gunicorn's own

    def log(self, lvl: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        text = msg % args if args else msg
        if text.startswith("Error while closing socket") and lvl == logging.INFO:
            # A worker's listening socket was already closed by aiohttp when it stopped serving:
            # gunicorn's second close finds no descriptor. Nothing for an operator.
            lvl = logging.DEBUG
        log.log(lvl, json.dumps({"event": "gunicorn", "message": text}),
                exc_info=kwargs.get("exc_info"))

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=True)


class GunicornApp(BaseApplication):
    """gunicorn configured from the settings, on the socket `ecogram serve` bound."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.fd = sock.detach()  # gunicorn owns (and closes) the listening socket now
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": [f"fd://{self.fd}"],
            "workers": self.settings.workers,
            "worker_class": "aiohttp.worker.GunicornUVLoopWebWorker",
            # Loaded once, in the master, before the workers fork; each worker builds its own
            # pools and caches when its runner starts.
            "preload_app": True,
            "logger_class": GunicornLog,
            "loglevel": self.settings.log_level,
            "graceful_timeout": int(SHUTDOWN_TIMEOUT) + 5,
            "proc_name": "ecogram",
            "control_socket_disable": True,  # no gunicornc socket in $XDG_RUNTIME_DIR
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        settings = self.settings

        async def runner() -> Runner:
            # In the worker, after the fork: aiohttp's gunicorn worker starts this runner.
            from ecogram.app import create_app

            app = create_app(settings, migrate=False)
            stop_log_queue = logqueue.start()  # the listener thread is this worker's

            async def drain_log_queue(app: web.Application) -> None:
                stop_log_queue()

            app.on_cleanup.append(drain_log_queue)
            return make_runner(app, settings)

        return runner
