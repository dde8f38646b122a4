"""The cost of the request log line: before (``json.dumps`` + a StreamHandler on the request
path) and after (``JsonLine`` + ``ecogram.logqueue``: the JSON made and written by a thread).

    PYTHONPATH=. .venv/bin/python bench/log_bench.py 2> >(cat > /dev/null)

stderr should be a pipe, as under a process manager: the write is part of the cost. Prints the
process's CPU time per line (the thread included; the queue drained at the end) and the wall
time the logging call takes on the caller's side (the request path).
"""

import json
import logging
import sys
import time

from ecogram import logqueue
from ecogram.logqueue import JsonLine

LINES = 200_000


def fields(n: int) -> dict:
    return {"event": "request", "request_id": "0123456789abcdef0123", "method": "GET",
            "path": "/img/SKU-0001/1?w=400", "route": "img", "status": 200,
            "ms": round(n % 300 / 100, 2)}


def measure(log_one, queued: bool = False) -> tuple[float, float]:
    stop = logqueue.start() if queued else None
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(LINES):
        log_one(n)
    caller = time.perf_counter() - wall
    if stop is not None:
        stop()
    return (time.process_time() - cpu) / LINES * 1e6, caller / LINES * 1e6


def main() -> None:
    logging.basicConfig(level="INFO", format="%(message)s", stream=sys.stderr)
    log = logging.getLogger("ecogram.http")
    base, _ = measure(fields)
    before = measure(lambda n: log.info(json.dumps(fields(n))))
    after = measure(lambda n: log.info(JsonLine(fields(n))), queued=True)
    print(f"before: {before[0] - base:.2f} µs CPU per line, {before[1] - base:.2f} µs on the "
          f"request path; after: {after[0] - base:.2f} µs CPU per line, "
          f"{after[1] - base:.2f} µs on the request path")


if __name__ == "__main__":
    main()
