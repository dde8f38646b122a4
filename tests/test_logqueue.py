"""ecogram.logqueue: the JSON of a line is made by the listener thread, and stop() drains."""

from __future__ import annotations

import io
import json
import logging
import threading

from ecogram import logqueue
from ecogram.logqueue import JsonLine


class _Thread(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.threads.add(threading.current_thread().name)


def test_lines_are_formatted_and_written_off_the_callers_thread_and_stop_drains():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    written = logging.StreamHandler(stream)
    written.setFormatter(logging.Formatter("%(message)s"))
    where = _Thread()
    root.handlers[:] = [written, where]
    root.setLevel(logging.INFO)
    made_on: list[str] = []

    class Watched(JsonLine):
        __slots__ = ()

        def __str__(self) -> str:
            made_on.append(threading.current_thread().name)
            return super().__str__()

    try:
        stop = logqueue.start(lean=False)
        log = logging.getLogger("ecogram.test-queue")
        for n in range(500):
            log.info(Watched({"event": "request", "n": n, "path": "/img/é"}))
        stop()
        stop()  # idempotent
        assert root.handlers == [written, where]  # put back
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
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


def test_a_line_with_a_traceback_keeps_it_behind_the_queue():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    written = logging.StreamHandler(stream)
    written.setFormatter(logging.Formatter("%(message)s"))
    root.handlers[:] = [written]
    root.setLevel(logging.INFO)
    try:
        stop = logqueue.start(lean=False)
        log = logging.getLogger("ecogram.test-queue")
        log.info(JsonLine({"event": "plain"}))
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception(JsonLine({"event": "failed"}))
        stop()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert lines[0] == '{"event": "plain"}'
    assert lines[1] == '{"event": "failed"}'
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
