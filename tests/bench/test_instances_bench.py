"""The instances benchmark's client stays right: each URL once, clients held to one instance.

Nothing here measures speed: the benchmark itself is `bench/instances_bench.py` (bench/README.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load():
    sys.path.insert(0, str(BENCH))  # the script imports delivery_bench by name
    try:
        spec = importlib.util.spec_from_file_location("instances_bench",
                                                      BENCH / "instances_bench.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["instances_bench"] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


bench = _load()


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        body = b"x" * 100
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_servers() -> Iterator[list]:
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.paths = []
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def _base(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_cold_paths_are_the_delivery_cold_list_in_the_format_asked() -> None:
    webp, avif = bench.cold_paths(0, "webp"), bench.cold_paths(0, "avif")
    assert len(set(avif)) == len(avif) == len(webp)
    assert all("fmt=avif" in path and "fmt=webp" not in path for path in avif)
    assert [p.replace("fmt=avif", "fmt=webp") for p in avif] == webp
    assert not set(bench.cold_paths(0, "webp")) & set(bench.cold_paths(1, "webp"))


def test_each_path_is_asked_once_and_each_client_keeps_to_its_instance(two_servers) -> None:
    paths = [f"/img/X?w={w}" for w in range(100, 140)]
    run = bench.Run("test", 2, 4)
    asyncio.run(bench.drive(run, [_base(s) for s in two_servers], paths, 10))
    asked = [path for server in two_servers for path in server.paths]
    assert sorted(asked) == sorted(paths) and run.requests == len(paths) and not run.errors
    for server in two_servers:
        assert server.paths, "a server got no client"
        assert sorted(run.served_by[_base(server)]) == sorted(server.paths)
    assert run.bytes == 100 * len(paths)
    assert run.summary()["mean_kb"] == round(100 / 1024, 1)


def test_cycle_asks_the_list_again_until_the_time_is_up(two_servers) -> None:
    paths = ["/img/X?w=100", "/img/X?w=200"]
    run = bench.Run("test", 2, 2)
    asyncio.run(bench.drive(run, [_base(s) for s in two_servers], paths, 0.5, cycle=True))
    counts = Counter(path for server in two_servers for path in server.paths)
    assert set(counts) == set(paths) and min(counts.values()) > 2
