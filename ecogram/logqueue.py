"""Log lines written off the request path: a ``QueueHandler`` in front, a ``QueueListener``
thread behind it.

A server process (``ecogram serve``'s one worker, or each gunicorn worker after its fork: a
thread does not survive a fork) moves the root logger's handlers behind a queue. A request then
only builds its record and puts it on the queue (its request line, through ``info``, not even a
record); the JSON is made and written by the listener thread. ``stop()`` drains the queue, so
no line is lost at shutdown.
"""

from __future__ import annotations

import json
import json.encoder
import logging
import logging.handlers
import queue
import time
from collections.abc import Callable


class JsonLine:
    """A log message that is one JSON object, made only when the line is written.

    ``record.getMessage()`` (what every formatter calls) gives the JSON, so handlers and
    watchers that read it see the same line as before; the request pays for a dict, not for
    ``json.dumps``."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict) -> None:
        self.fields = fields

    def __str__(self) -> str:
        if _encode is None:  # pragma: no cover - a Python without json's C speed-ups
            return json.dumps(self.fields)
        return "".join(_encode(self.fields, 0))


# What json.dumps(fields) does, with its C encoder made once instead of on every call and no
# check for circular references (a line's fields are plain data; a cycle would end in
# RecursionError, handled as any logging error): the same text, 1.4 µs instead of 2.4 for a
# request line, on the listener thread.
_encode = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None,
    ": ", ", ", False, False, True,
)


class _Line:
    """An INFO line put on the queue by ``info`` instead of a record: what the listener needs
    to write it; made into a ``LogRecord`` only for a handler that needs one."""

    __slots__ = ("created", "msg", "name")
    levelno = logging.INFO
    exc_info = exc_text = stack_info = None

    def __init__(self, name: str, created: float, msg: JsonLine) -> None:
        self.name, self.created, self.msg = name, created, msg

    def getMessage(self) -> str:  # LogRecord's name for it
        return str(self.msg)

    def record(self) -> logging.LogRecord:
        """The record ``logger.info(msg)`` would have made at that time (lean: no caller)."""
        record = logging.getLogRecordFactory()(
            self.name, logging.INFO, "(unknown file)", 0, self.msg, (), None,
            "(unknown function)",
        )
        ct = record.created = self.created
        record.msecs = int((ct - int(ct)) * 1000) + 0.0
        record.relativeCreated = (ct - logging._startTime) * 1000  # type: ignore[attr-defined]
        return record


def _as_record(item: logging.LogRecord | _Line) -> logging.LogRecord:
    return item.record() if type(item) is _Line else item  # type: ignore[union-attr]


_front: _LazyQueueHandler | None = None  # the queue's front while a lean queue is on


def info(logger: logging.Logger, message: JsonLine) -> None:
    """``logger.info(message)``, for the line every request writes.

    While a lean queue is on (a server process) and the record could only reach the queue —
    no handler, filter, disabled logger or stop on the way up — the logger's name, the time
    and the message go on the queue as they are, and the listener makes the record if a
    handler needs one: the Logger and Handler calls are skipped on the request path
    (bench/README.md, "Warm /img against nginx"). Otherwise (a test's capture handler, any
    other configuration) it is ``logger.info``."""
    front = _front
    if front is not None and logger.isEnabledFor(logging.INFO) and _only_queued(logger, front):
        front.queue.put(_Line(logger.name, time.time(), message))
    else:
        logger.info(message)


def _only_queued(logger: logging.Logger, front: logging.Handler) -> bool:
    node: logging.Logger | None = logger
    root = logging.root
    while node is not root:
        if node is None or node.handlers or node.filters or node.disabled or not node.propagate:
            return False
        node = node.parent
    handlers = root.handlers
    return (len(handlers) == 1 and handlers[0] is front and not root.filters
            and not root.disabled and not front.filters and front.level <= logging.INFO)


class _LazyQueueHandler(logging.handlers.QueueHandler):
    """Puts the record itself on the queue: the standard ``prepare`` formats the message on the
    caller's thread, which is the cost this is here to move. The queue is in-process (a
    thread's), so the record need not be made picklable."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def handle(self, record: logging.LogRecord) -> bool:
        # Handler.handle without the handler's lock: putting on a SimpleQueue is thread-safe
        # on its own; the lock cost ~0.4 µs of a ~3.5 µs request-line call (in-process).
        if not self.filters or self.filter(record):
            try:
                self.queue.put_nowait(record)
            except Exception:
                self.handleError(record)
            return True
        return False


class _BatchListener(logging.handlers.QueueListener):
    """Writes what has queued up since its last write in one go: a stream handler's lines are
    joined into one ``write`` and one flush (one system call for a burst of requests, not one
    per line); any other handler handles each record as usual.

    After a batch that emptied the queue it sleeps ``PAUSE`` before it waits again, so lines
    gather meanwhile: a request's ``put`` finds no thread waiting and wakes none. Woken by each
    line instead, the listener cost ~30 µs of CPU per request when requests came one at a time
    (a thread switch and a GIL hand-over each), 5–7 µs with the pause; under saturation it
    woke once per ~5 lines, and the pause changes little there (bench/README.md, "Warm /img
    against nginx"). A line reaches the stream at most ``PAUSE`` later; an idle server's
    listener waits in ``get`` and costs nothing."""

    _BATCH = 512
    PAUSE = 0.002  # seconds

    def _monitor(self) -> None:
        q, sentinel = self.queue, self._sentinel
        done = False
        while not done:
            batch: list[logging.LogRecord | _Line] = []
            record = q.get()
            while True:
                if record is sentinel:
                    done = True
                    break
                batch.append(record)
                if len(batch) >= self._BATCH:
                    break
                try:
                    record = q.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            if not done and len(batch) < self._BATCH:  # a full batch: on at once, no backlog
                time.sleep(self.PAUSE)

    def _write(self, batch: list[logging.LogRecord | _Line]) -> None:
        for handler in self.handlers:
            records = [r for r in batch if r.levelno >= handler.level]
            if not records:
                continue
            if type(handler) is logging.StreamHandler and not handler.filters:
                try:
                    plain = _message_only(handler.formatter)
                    text = "".join(
                        # a plain line is its message: the formatter's machinery (the style's
                        # dict formatting, the time check) skipped, 0.7 µs less per line
                        (r.getMessage() if plain and not (r.exc_info or r.exc_text or r.stack_info)
                         else handler.format(_as_record(r))) + handler.terminator
                        for r in records
                    )
                    with handler.lock:
                        handler.stream.write(text)
                        handler.flush()
                except Exception:
                    for record in records:
                        handler.handleError(_as_record(record))
            else:
                for record in records:
                    handler.handle(_as_record(record))


def _message_only(formatter: logging.Formatter | None) -> bool:
    """A formatter that writes ``%(message)s`` and nothing else (``ecogram.cli``'s)."""
    return (type(formatter) is logging.Formatter
            and type(formatter._style) is logging.PercentStyle
            and formatter._style._fmt == "%(message)s")


def _skip_record_extras() -> None:
    """A server's lines are ``%(message)s`` JSON: skip what each record would otherwise look up
    and nobody prints — the caller's frame, thread, process and task names (the logging HOWTO's
    "Optimization" section)."""
    logging._srcfile = None  # type: ignore[attr-defined]  # documented there
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # Python 3.12+


def start(*, lean: bool = True) -> Callable[[], None]:
    """Move the root logger's handlers behind a queue; return the function that drains the
    queue, stops the thread and puts the handlers back (idempotent). ``lean``: records skip
    the caller, thread and process look-ups too (a server process's choice: process-wide)."""
    if lean:
        _skip_record_extras()
    root = logging.getLogger()
    handlers = [h for h in root.handlers if not isinstance(h, logging.handlers.QueueHandler)]
    if not handlers:
        return lambda: None
    lines: queue.SimpleQueue = queue.SimpleQueue()
    front = _LazyQueueHandler(lines)
    listener = _BatchListener(lines, *handlers, respect_handler_level=True)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(front)
    listener.start()
    global _front
    if lean:  # ``info``'s lines carry no caller, thread or process: only a lean queue's
        _front = front
    stopped = False

    def stop() -> None:
        nonlocal stopped
        global _front
        if stopped:
            return
        stopped = True
        if _front is front:
            _front = None
        root.removeHandler(front)
        listener.stop()  # writes what is queued, then ends the thread
        for handler in handlers:
            root.addHandler(handler)

    return stop
