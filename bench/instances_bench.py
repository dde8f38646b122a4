"""Instances benchmark: `/img` cold through one `ecogram serve` instance, then through two.

One command, from a fresh clone (see bench/README.md, "Instances"):

    .venv/bin/python bench/instances_bench.py [--seconds 30] [--connections 4]

Both runs use one PostgreSQL database and one Redis, the deployment docs/scaling.md describes:

1. **one instance** (`ecogram serve`, one worker) pinned to core 0; `--connections` clients
   ask distinct cold URLs (delivery_bench's cold list: a new width each request, WebP q80, so
   every answer is a render), each URL once, for `--seconds`;
2. **two instances** on two ports, pinned to cores 0 and 1 (both restarted, so neither holds a
   decoded master from the first run), twice as many clients, each client held to one instance
   as a load balancer would spread connections, on another block of the cold list;
3. **Redis hits**: both instances restarted with `ECOGRAM_CACHE_MEMORY_MB=0` (no memory tier)
   and asked, round and round for `--seconds`, the URLs run 2 rendered: every answer comes from
   Redis, the rate at which a variant rendered by any instance is served by every other while
   it is not (yet) in that instance's memory.

The clients run in this process (asyncio + aiohttp, unpinned: a few dozen requests per second
cost them little). Besides req/s it records the CPU seconds the server processes used (psutil),
so renders per CPU second can be read even when other work shares the machine.
Writes bench/results/instances-<date>-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import delivery_bench as bench

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CORES = ("0", "1")


@dataclass
class Run:
    name: str
    instances: int
    connections: int
    requests: int = 0
    bytes: int = 0  # bodies of the 200 answers
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0  # Redis' own CPU time during the run (INFO cpu)
    served_by: dict[str, list[str]] = field(default_factory=dict)  # instance → paths it served

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

        return {
            "name": self.name, "instances": self.instances, "connections": self.connections,
            "requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 2),
            "mean_kb": round(self.bytes / self.requests / 1024, 1) if self.requests else None,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "server_cpu_s": round(self.server_cpu_s, 2),
            "redis_cpu_s": round(self.redis_cpu_s, 2),
            "per_server_cpu_s": round(self.requests / self.server_cpu_s, 2)
            if self.server_cpu_s else None,
        }


async def drive(run: Run, bases: Sequence[str], paths: Sequence[str], seconds: float, *,
                cycle: bool = False) -> None:
    """``run.connections`` clients, client i held to instance i mod len(bases) (a load
    balancer spreads connections, not requests); each takes the next path of one shared list
    until the list or the time runs out: every path is asked once. ``cycle``: the list starts
    again when it ends, until the time runs out."""
    import aiohttp

    queue = list(reversed(paths))
    stop_at = time.monotonic() + seconds
    run.served_by = {base: [] for base in bases}

    async def client(base: str, http: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            if not queue:
                if not cycle:
                    return
                queue.extend(reversed(paths))
            path = queue.pop()
            started = time.perf_counter()
            try:
                async with http.get(base + path) as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status = type(exc).__name__
            if status == 200:
                run.requests += 1
                run.bytes += len(body)
                run.latencies_ms.append((time.perf_counter() - started) * 1000)
                run.served_by[base].append(path)
            else:
                run.errors[str(status)] = run.errors.get(str(status), 0) + 1

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(bases[i % len(bases)], http)
                               for i in range(run.connections)))
        run.seconds = time.monotonic() - started


def measure(run: Run, servers: Sequence[bench.Server], paths: Sequence[str], seconds: float,
            *, cycle: bool = False) -> Run:
    before = sum(bench.cpu_seconds(s.proc.pid) for s in servers)
    redis_before = redis_cpu_seconds()
    asyncio.run(drive(run, [s.base for s in servers], paths, seconds, cycle=cycle))
    run.server_cpu_s = sum(bench.cpu_seconds(s.proc.pid) for s in servers) - before
    run.redis_cpu_s = redis_cpu_seconds() - redis_before
    s = run.summary()
    bench.say(f"  {run.name}: {s['rps']} req/s, {s['per_server_cpu_s']} per server CPU-s, "
              f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, {run.requests} answers, "
              f"errors {run.errors}")
    return run


def cold_paths(block: int, fmt: str) -> list[str]:
    """delivery_bench's cold list ``block`` (distinct widths, q80), in ``fmt``."""
    return [v.ecogram().replace("fmt=webp", f"fmt={fmt}") for v in bench.cold_run_list(block)]


def redis_cpu_seconds() -> float:
    """Redis' own CPU time so far (user + system, from INFO), shared by whatever uses it."""
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    try:
        info = raw.info("cpu")
    finally:
        raw.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def start(name: str, core: str, env: dict[str, str], log: Path) -> bench.Server:
    port = bench.free_port()
    return bench.start_server(name, bench.pinned(bench.ecogram_command(port, 1), core),
                              f"http://127.0.0.1:{port}", "/readyz", log, env=env)


def markdown(results: dict[str, Any]) -> str:
    runs = results.get("runs", {})
    lines = [
        f"Instances benchmark ({results['format']}), {results['started']}; machine: "
        f"{results['machine']['nproc']} cores, {results['machine']['cpu']}; load average at start "
        f"{results['machine']['loadavg_at_start'][0]:.2f}, at end "
        f"{results['loadavg_at_end'][0]:.2f}.",
        "",
        "| run | instances | clients | answers | req/s | per server CPU-s | Redis CPU-s "
        "| p50 ms | p99 ms | mean KB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in runs.values():
        lines.append(f"| {s['name']} | {s['instances']} | {s['connections']} | {s['requests']} "
                     f"| {s['rps']:.1f} | {s['per_server_cpu_s']} | {s['redis_cpu_s']} "
                     f"| {s['p50_ms']} | {s['p99_ms']} | {s['mean_kb']} |")
    one, two = runs.get("cold_one"), runs.get("cold_two")
    if one and two and one["rps"]:
        lines += ["", f"Two instances against one, cold: **{two['rps'] / one['rps']:.2f}×** "
                      f"req/s; per server CPU-s {two['per_server_cpu_s']} against "
                      f"{one['per_server_cpu_s']}."]
    return "\n".join(lines) + "\n"


def run_all(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    db_name = f"ecogram_instances_bench_{os.getpid()}"
    prefix = f"ecogram-bench-{secrets.token_hex(4)}"
    env = bench.ecogram_env(bench.POSTGRES_URL + db_name, work / "data")
    env.update({"REDIS_URL": REDIS_URL, "ECOGRAM_REDIS_PREFIX": prefix})
    results["settings"] = {k: v for k, v in sorted(env.items())
                           if k.startswith("ECOGRAM_") and "SECRET" not in k}
    log = work / "run.log"
    runs: dict[str, Any] = {}
    results["runs"] = runs
    asyncio.run(bench._create_database(db_name))
    try:
        bench.say("one instance on core 0: set-up")
        a = start("a", CORES[0], env, log)
        try:
            results["setup"] = asyncio.run(bench._load_catalogue(a.base))
            bench.wait_idle(a.proc.pid)
            paths = cold_paths(0, args.format)
            runs["cold_one"] = measure(Run("cold, one instance (core 0)", 1, args.connections),
                                       [a], paths, args.seconds).summary()
        finally:
            a.stop()
        if args.one_only:
            return
        bench.say("two instances, cores 0 and 1")
        a = start("a", CORES[0], env, log)
        b = start("b", CORES[1], env, log)
        try:
            for server in (a, b):
                bench.wait_idle(server.proc.pid)
            paths = cold_paths(1, args.format)
            two = measure(Run("cold, two instances (cores 0, 1)", 2, 2 * args.connections),
                          [a, b], paths, args.seconds)
            runs["cold_two"] = two.summary()
            time.sleep(1)  # the last renders' Redis writes (in the background) land
        finally:
            a.stop()
            b.stop()
        bench.say("two instances without a memory tier: every answer from Redis")
        rendered = [path for served in two.served_by.values() for path in served]
        no_memory = {**env, "ECOGRAM_CACHE_MEMORY_MB": "0"}
        a = start("a", CORES[0], no_memory, log)
        b = start("b", CORES[1], no_memory, log)
        try:
            for server in (a, b):
                bench.wait_idle(server.proc.pid)
            runs["redis_two"] = measure(
                Run("Redis hits, two instances (no memory tier)", 2, 4 * args.connections),
                [a, b], rendered, args.seconds, cycle=True).summary()
            runs["redis_two"]["served"] = {
                name: {key.split("{", 1)[1].rstrip("}"): value
                       for key, value in bench.scrape_metrics(server.base).items()
                       if key.startswith("ecogram_img_served_total{")}
                for name, server in (("a", a), ("b", b))
            }
        finally:
            a.stop()
            b.stop()
    finally:
        asyncio.run(bench._drop_database(db_name))
        import redis

        raw = redis.Redis.from_url(REDIS_URL)
        try:
            left = list(raw.scan_iter(f"{prefix}:*"))
            if left:
                raw.delete(*left)
        finally:
            raw.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--connections", type=int, default=bench.COLD_CONNECTIONS,
                        help="clients per instance (default 4, as delivery_bench's cold run)")
    parser.add_argument("--format", choices=("webp", "avif", "jpeg"), default="webp",
                        help="output format of the cold URLs (default webp, q80)")
    parser.add_argument("--one-only", action="store_true",
                        help="only the one-instance cold run (e.g. to price another --format)")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        bench.say("this benchmark needs two cores (one instance on each)")
        return 2
    bench.ensure_images()
    started = dt.datetime.now()
    results: dict[str, Any] = {"started": started.isoformat(timespec="seconds"),
                               "seconds": args.seconds, "connections": args.connections,
                               "format": args.format,
                               "machine": bench.machine()}
    work = Path(tempfile.mkdtemp(prefix="ecogram-instances-bench-"))
    try:
        run_all(args, work, results)
    finally:
        results["loadavg_at_end"] = os.getloadavg()
        bench.RESULTS.mkdir(exist_ok=True)
        stem = bench.RESULTS / f"instances-{started:%Y-%m-%d-%H%M}"
        stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        log = work / "run.log"
        if log.exists():
            shutil.copyfile(log, stem.with_suffix(".log"))
        shutil.rmtree(work, ignore_errors=True)
        report = markdown(results) if "runs" in results else "(no runs)"
        stem.with_suffix(".md").write_text(report)
        print()
        print(report)
        bench.say(f"written: {stem}.md, {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
