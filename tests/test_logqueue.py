"""ecogram.logqueue: the JSON of a line is made by the listener thread, and stop() drains."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from ecogram import logqueue
from ecogram.logqueue import JsonLine


@pytest.fixture
def root():
    """The root logger, its handlers and level put back afterwards."""
    logger = logging.getLogger()
    saved = logger.handlers[:], logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.handlers[:], level = saved
    logger.setLevel(level)


def _messages(stream: io.StringIO) -> logging.Handler:
    """A handler writing each line's message alone to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


class _Thread(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.threads.add(threading.current_thread().name)


def test_lines_are_formatted_and_written_off_the_callers_thread_and_stop_drains(root):
    stream = io.StringIO()
    written = _messages(stream)
    where = _Thread()
    root.handlers[:] = [written, where]
    made_on: list[str] = []

    class Watched(JsonLine):
        __slots__ = ()

        def __str__(self) -> str:
            made_on.append(threading.current_thread().name)
            return super().__str__()

    stop = logqueue.start(lean=False)
    log = logging.getLogger("ecogram.test-queue")
    for n in range(500):
        log.info(Watched({"event": "request", "n": n, "path": "/img/é"}))
    stop()
    stop()  # idempotent
    assert root.handlers == [written, where]  # put back
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert [line["n"] for line in lines] == list(range(500))  # every one, in order
    assert lines[0] == {"event": "request", "n": 0, "path": "/img/é"}
    assert threading.current_thread().name not in where.threads
    assert made_on and threading.current_thread().name not in made_on


def test_a_json_line_is_the_text_json_dumps_gives():
    for fields in (
        {"event": "request", "request_id": "ab12", "method": "GET", "path": "/img/é\"\\x",
         "route": "img", "status": 200, "ms": 0.07},
        {"nested": {"q": [1, 2.5, None, True]}, "text": "ü\n", "big": 10**20},
    ):
        assert str(JsonLine(fields)) == json.dumps(fields)


def test_a_line_with_a_traceback_keeps_it_behind_the_queue(root):
    stream = io.StringIO()
    root.handlers[:] = [_messages(stream)]
    stop = logqueue.start(lean=False)
    log = logging.getLogger("ecogram.test-queue")
    log.info(JsonLine({"event": "plain"}))
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception(JsonLine({"event": "failed"}))
    stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == '{"event": "plain"}'
    assert lines[1] == '{"event": "failed"}'
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_request_lines_take_the_shortcut_onto_a_lean_queue_and_read_the_same(monkeypatch,
                                                                              root):
    # lean=True changes logging's process-wide switches: put them back afterwards
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    plain, detailed = io.StringIO(), io.StringIO()
    written = _messages(plain)
    other = logging.StreamHandler(detailed)  # a handler that needs whole records
    other.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    other.addFilter(lambda record: True)
    root.handlers[:] = [written, other]
    log = logging.getLogger("ecogram.test-queue")
    made = logqueue._Line.record
    from_lines: list[str] = []  # records the listener made from shortcut lines, by thread

    def record(line):
        from_lines.append(threading.current_thread().name)
        return made(line)

    monkeypatch.setattr(logqueue._Line, "record", record)
    stop = logqueue.start()
    for n in range(3):
        logqueue.info(log, JsonLine({"event": "request", "n": n}))
        log.info(JsonLine({"event": "other", "n": n}))
    log.setLevel(logging.WARNING)
    logqueue.info(log, JsonLine({"event": "request", "n": "dropped"}))  # below the level
    log.setLevel(logging.NOTSET)
    stop()
    assert logqueue._front is None  # stopped: the shortcut is off
    # the three request lines went on the queue as they were (the detailed handler needed
    # records: the listener made them), the other lines as records
    assert len(from_lines) == 3 and threading.current_thread().name not in from_lines
    assert plain.getvalue().splitlines() == [
        line for n in range(3)
        for line in (f'{{"event": "request", "n": {n}}}', f'{{"event": "other", "n": {n}}}')
    ]
    assert detailed.getvalue().splitlines()[0] == (
        'ecogram.test-queue INFO {"event": "request", "n": 0}'
    )


def test_a_request_line_reaches_a_capture_handler_as_an_ordinary_record():
    """Without a queue (tests, commands) or with a handler beside it, ``info`` is log.info."""
    log = logging.getLogger("ecogram.test-queue")
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    log.addHandler(capture)
    log.setLevel(logging.INFO)
    try:
        logqueue.info(log, JsonLine({"event": "request", "n": 1}))
    finally:
        log.removeHandler(capture)
        log.setLevel(logging.NOTSET)
    [record] = seen
    assert record.getMessage() == '{"event": "request", "n": 1}'
    assert record.levelno == logging.INFO
