"""Delivery benchmark: ecogram's /img against thumbor 7.8, nginx and a bare pyvips loop.

One command, from a fresh clone (as root on Debian; see bench/README.md, "Delivery"):

    .venv/bin/python bench/delivery_bench.py [--quick] [--skip-thumbor] [--minutes-memory 10]

Every contender serves the same four photos (bench/images/) as WebP q80 at the same widths,
pinned to core 0 with wrk pinned to core 1, one after the other in one run, so the ratios
between them are what to read: absolute figures move with the machine and whatever else runs.

- cold: a list of distinct URLs (widths 160-1200 spread over the photos), each requested once,
  so no cache can help; thumbor runs without result storage.
- warm: the same 8 URLs (4 photos x 400 and 800 wide) at concurrency 16; thumbor with its file
  result storage, nginx serving the same bytes pre-rendered as static files.
- memory: a long mixed run (mostly warm, some cold) while the server's RSS is sampled each second.
- workers 2: ecogram's cold and warm runs again with `--workers 2` and wrk unpinned.

Writes bench/results/delivery-<date>-<time>.md and .json (bench/results/ is git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
IMAGES = BENCH / "images"
WRK_DIR = BENCH / "wrk"
RESULTS = BENCH / "results"
THUMBOR_VENV = BENCH / ".venv-thumbor"
THUMBOR_VERSION = "7.8.0"
SHARED_IMAGES = ROOT.parent / "shared" / "bench-images"

PHOTOS = ("photo1.jpg", "photo2.jpg", "product.jpg", "noise.jpg")
CODES = {name: f"BENCH-{i}" for i, name in enumerate(PHOTOS, start=1)}
WARM_WIDTHS = (400, 800)
COLD_WIDTHS = tuple(w for w in range(160, 1201) if w not in WARM_WIDTHS)
QUALITY = 80
COLD_CONNECTIONS = 4
WARM_CONNECTIONS = 16
MIXED_CONNECTIONS = 16
MIXED_COLD_PERCENT = 5
# A 1-minute load average above this (the server and wrk make ~2) means other work competed.
BUSY_LOAD = 2.5
SERVER_CORE = "0"
LOAD_CORE = "1"
POSTGRES_URL = os.environ.get("ECOGRAM_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/")
BENCH_SECRET = "delivery-bench-secret-key-0123456789abcdef"
ADMIN = {"email": "bench-admin@example.com", "name": "Bench Admin",
         "password": "bench-password-0123456789"}

# What the issue asks of ecogram, as ratios within one run.
TARGETS = {
    "cold_vs_thumbor": 1.5,
    "cold_vs_bare_pyvips": 1.0,
    "warm_vs_thumbor": 5.0,
    "warm_vs_nginx": 0.25,
    "warm_p99_ms": 10.0,
}


# --------------------------------------------------------------------------------------------
# The URL lists: pure functions, shared by every contender (and by the tests).


@dataclass(frozen=True)
class Variant:
    photo: str
    width: int
    quality: int = QUALITY
    # The height pyvips' thumbnail gives this width (see with_heights); thumbor is asked for it
    # explicitly, as its own rounding is sometimes one pixel off libvips'.
    height: int = 0

    def ecogram(self) -> str:
        return f"/img/{CODES[self.photo]}?w={self.width}&fmt=webp&q={self.quality}"

    def thumbor(self) -> str:
        return (f"/unsafe/{self.width}x{self.height}/filters:format(webp):"
                f"quality({self.quality})/{self.photo}")

    def static(self) -> str:
        return f"/{self.photo.removesuffix('.jpg')}-{self.width}.webp"


def cold_variants(rotation: int = 0) -> list[Variant]:
    """Each width of COLD_WIDTHS once, the photos taken in turn; rotations 0-3 are disjoint.

    Rotation r gives width i to photo (i + r) mod 4, so the four rotations together hold every
    (photo, width) pair once.
    """
    return [Variant(PHOTOS[(i + rotation) % len(PHOTOS)], w) for i, w in enumerate(COLD_WIDTHS)]


def cold_run_list(block: int) -> list[Variant]:
    """The cold list of one server start: block 0 (rotations 0-1) for thumbor and ecogram with
    one worker, block 1 (rotations 2-3) for ecogram with two, so no run meets a URL an earlier
    run has rendered; 2,078 URLs each, enough for 30 s at ~70 renders/s.

    A fixed shuffle: any prefix (a run covers only part of the list) holds small and large
    widths and all four photos alike, and every contender gets the same order.
    """
    variants = [*cold_variants(2 * block), *cold_variants(2 * block + 1)]
    random.Random(20261128 + block).shuffle(variants)
    return variants


def with_heights(variants: Sequence[Variant]) -> list[Variant]:
    """The variants with the height pyvips.Image.thumbnail(path, width) gives each.

    thumbnail is lazy: this reads the JPEG headers and plans the shrink, and decodes no pixels.
    """
    import pyvips

    out = []
    for v in variants:
        height = pyvips.Image.thumbnail(str(IMAGES / v.photo), v.width).height
        out.append(dataclasses.replace(v, height=height))
    return out


def warm_variants() -> list[Variant]:
    return [Variant(photo, w) for w in WARM_WIDTHS for photo in PHOTOS]


def mixed_cold_variants() -> list[Variant]:
    """A long list of distinct variants for the memory run: every (photo, width) at q75-79.

    Other qualities than the cold runs' q80, so none of these URLs was rendered before; the list
    is long enough to keep filling the variant cache for ten minutes, which is what the memory
    run is about.
    """
    out = [Variant(v.photo, v.width, quality)
           for quality in (79, 78, 77, 76, 75) for r in range(4) for v in cold_variants(r)]
    random.Random(20261129).shuffle(out)
    return out


def write_paths(path: Path, paths: Sequence[str]) -> Path:
    path.write_text("".join(p + "\n" for p in paths))
    return path


def render_template(template: Path, **values: Any) -> str:
    return string.Template(template.read_text()).substitute(**{k: str(v) for k, v in
                                                               values.items()})


def nginx_conf(prefix: Path, root: Path, port: int, access_log: bool = False) -> str:
    # --log-requests: nginx's default access log (combined format, a write per request).
    return render_template(BENCH / "nginx" / "nginx.conf.template", prefix=prefix, root=root,
                           port=port,
                           access_log=f"{prefix}/access.log" if access_log else "off")


def thumbor_conf(result_storage: bool, result_dir: Path) -> str:
    storage = "'thumbor.result_storages.file_storage'" if result_storage else "None"
    return render_template(BENCH / "thumbor" / "thumbor.conf.template", images=IMAGES,
                           result_storage=storage, result_dir=result_dir)


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    name: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    bytes: int
    exhausted: bool = False
    # CPU seconds the server's processes used during the run, and requests per CPU second: a
    # figure that other load on the machine moves much less than req/s.
    server_cpu_s: float | None = None
    per_cpu_s: float | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_wrk(name: str, output: str) -> WrkResult:
    """Reads the WRK_JSON line that bench/wrk/report.lua prints at the end of a run."""
    match = re.search(r"^WRK_JSON (\{.*\})\s*$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk ({name}) printed no summary:\n{output[-2000:]}")
    data = json.loads(match.group(1))
    # active_us: until the last thread ran out of a cold list, when they all did (report.lua).
    duration = data.get("active_us", data["duration_us"]) / 1e6
    lat = data["latency_us"]
    return WrkResult(
        name=name, requests=data["requests"], duration_s=round(duration, 2),
        rps=round(data["requests"] / duration, 2) if duration else 0.0,
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000, errors=data["errors"], bytes=data["bytes"],
        exhausted=data.get("exhausted_threads", 0) > 0)


def wrk_command(url: str, script: str, args: Sequence[str], *, connections: int, seconds: float,
                threads: int = 1, pin: str | None = LOAD_CORE) -> list[str]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "60s", "--latency", "-s", str(WRK_DIR / script), url, "--", *args]
    return ["taskset", "-c", pin, *cmd] if pin is not None else cmd


def wrk(name: str, server: Server, script: str, args: Sequence[str], log: Path, *,
        connections: int, seconds: float, threads: int = 1,
        pin: str | None = LOAD_CORE) -> WrkResult:
    cmd = wrk_command(server.base, script, args, connections=connections, seconds=seconds,
                      threads=threads, pin=pin)
    before = cpu_seconds(server.proc.pid)
    result = run_wrk(name, cmd, log)
    used = cpu_seconds(server.proc.pid) - before
    if used > 0:
        result.server_cpu_s = round(used, 2)
        result.per_cpu_s = round(result.requests / used, 2)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server's processes so far (all their threads)."""
    import psutil

    total = 0.0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def run_wrk(name: str, cmd: list[str], log: Path) -> WrkResult:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    with log.open("a") as out:
        out.write(f"\n### {name}\n$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk ({name}) failed ({proc.returncode}): {proc.stderr[-1000:]}")
    result = parse_wrk(name, proc.stdout)
    say(f"  {name}: {result.rps:,.1f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, {result.requests} requests, errors {result.errors}"
        + (" (the URL list ran out before the end)" if result.exhausted else ""))
    return result


# --------------------------------------------------------------------------------------------
# Processes


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(cmd: list[str], core: str | None) -> list[str]:
    return ["taskset", "-c", core, *cmd] if core is not None else cmd


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    log: Path  # this server's output
    run_log: Path  # the run's log, where the server's output is appended when it stops

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Each server runs in its own process group (start_new_session): its workers go too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with self.run_log.open("a") as out:
            out.write(f"\n### {self.name} output ({self.log.name})\n"
                      + self.log.read_text(errors="replace"))

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_server(name: str, cmd: list[str], base: str, probe: str, run_log: Path,
                 env: dict[str, str] | None = None, timeout: float = 90) -> Server:
    log = run_log.with_name(f"{name}-{time.monotonic_ns()}.log")
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=ROOT)
    server = Server(name, proc, base, log, run_log)
    deadline = time.monotonic() + timeout
    problem = f"did not answer {probe} within {timeout:.0f} s"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            problem = f"exited with status {proc.returncode} before answering {probe}"
            break
        try:
            status, _, _ = http_get(base + probe, timeout=5)
            if status < 500:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    last = server.tail(1).strip()
    say(f"{name} {problem}; its last lines:\n{server.tail()}")
    raise RuntimeError(f"{name} {problem} ({last[:200]})")


def http_get(url: str, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def process_tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_idle(pid: int, threshold: float = 10.0, settle: float = 2.0, limit: float = 120) -> None:
    """Waits until the server's processes use under `threshold` % CPU for `settle` seconds.

    Background work a server does on its own (ecogram renders the eager widths when a photo is
    approved) must not fall into a measured run.
    """
    import psutil

    deadline = time.monotonic() + limit
    quiet_since: float | None = None
    procs = process_tree(pid)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        busy = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                busy += proc.cpu_percent(None)
        if busy < threshold:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return None
    cov = sum((t - mean_t) * (y - mean_y) for t, y in points)
    return round(cov / var * 60, 2)


class RssSampler:
    """Samples the RSS of a server's process tree once a second, in a thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (t, largest process MB, total MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        start = time.monotonic()
        while not self._stop.is_set():
            sizes = []
            for proc in process_tree(self.pid):
                with contextlib.suppress(psutil.Error):
                    sizes.append(proc.memory_info().rss / 2**20)
            if sizes:
                self.samples.append((time.monotonic() - start, max(sizes), sum(sizes)))
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        duration = self.samples[-1][0]
        window = min(60.0, max(duration / 4, 1.0))
        first = [s[1] for s in self.samples if s[0] <= window]
        last = [s[1] for s in self.samples if s[0] >= duration - window]
        return {
            "samples": len(self.samples),
            "duration_s": round(duration, 1),
            "window_s": round(window, 1),
            "peak_process_mb": round(max(s[1] for s in self.samples), 1),
            "peak_total_mb": round(max(s[2] for s in self.samples), 1),
            "first_window_avg_mb": round(sum(first) / len(first), 1),
            "last_window_avg_mb": round(sum(last) / len(last), 1),
            "growth_mb": round(sum(last) / len(last) - sum(first) / len(first), 1),
            # Slope over the last third, MB per minute: ~0 once the caches are full (a plateau).
            "last_third_mb_per_min": slope([(t, mb) for t, mb, _ in self.samples
                                            if t >= duration * 2 / 3]),
        }


# --------------------------------------------------------------------------------------------
# Set-up: tools, images


def ensure_tools(skip_thumbor: bool) -> dict[str, str]:
    missing = [pkg for binary, pkg in (("wrk", "wrk"), ("nginx", "nginx"))
               if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists()]
    if missing:
        say(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        # Another apt-get may hold the lock (CI installing Chromium): wait for it.
        subprocess.run(["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600",
                        *missing], check=True, env=env)
    versions = {
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True,
                              check=False).stdout.split("[")[0].strip(),
        "nginx": subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True,
                                check=False).stderr.strip(),
    }
    if not skip_thumbor:
        versions["thumbor"] = ensure_thumbor()
    return versions


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def ensure_thumbor() -> str:
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if not binary.exists():
        say(f"installing thumbor=={THUMBOR_VERSION} into {THUMBOR_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
        subprocess.run([str(THUMBOR_VENV / "bin" / "pip"), "install", "-q",
                        f"thumbor=={THUMBOR_VERSION}"], check=True)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if THUMBOR_VERSION not in version:
        raise RuntimeError(f"{binary} is {version!r}, not {THUMBOR_VERSION}")
    return version


def ensure_images() -> None:
    IMAGES.mkdir(exist_ok=True)
    for name in PHOTOS:
        target = IMAGES / name
        if not target.exists():
            source = SHARED_IMAGES / name
            if not source.exists():
                raise RuntimeError(f"{target} is missing (and no {source} to copy it from)")
            shutil.copyfile(source, target)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    import pyvips

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "loadavg_at_start": os.getloadavg(),
    }


# --------------------------------------------------------------------------------------------
# Contenders


def bare_loop_worker(paths_file: str, seconds: float) -> None:
    """Runs in a subprocess pinned to the server core: thumbnail + WebP q80 over the cold list."""
    import pyvips

    # Each transform starts from the file, as a cold request does: no operation cache.
    pyvips.cache_set_max(0)
    variants = [json.loads(line) for line in Path(paths_file).read_text().splitlines() if line]
    done, out_bytes = 0, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for photo, width in variants:
        image = pyvips.Image.thumbnail(str(IMAGES / photo), width)
        out_bytes += len(image.webpsave_buffer(Q=QUALITY))
        done += 1
        if time.perf_counter() - start >= seconds:
            break
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"transforms": done, "seconds": round(elapsed, 2),
                      "per_second": round(done / elapsed, 2), "cpu_seconds": round(cpu, 2),
                      "per_cpu_s": round(done / cpu, 2) if cpu else None, "bytes": out_bytes,
                      "exhausted": done == len(variants)}))


def run_bare_loop(work: Path, seconds: float) -> dict[str, Any]:
    say("bare pyvips loop (core 0)")
    listing = work / "bare.jsonl"
    listing.write_text("".join(json.dumps([v.photo, v.width]) + "\n" for v in cold_run_list(0)))
    proc = subprocess.run(pinned([sys.executable, __file__, "--bare-loop-worker", str(listing),
                                  str(seconds)], SERVER_CORE),
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    say(f"  {result['per_second']:.2f} transforms/s ({result['transforms']} in "
        f"{result['seconds']} s)")
    return result


def prerender_warm(static: Path) -> None:
    import pyvips

    for v in warm_variants():
        image = pyvips.Image.thumbnail(str(IMAGES / v.photo), v.width)
        (static / v.static().lstrip("/")).write_bytes(image.webpsave_buffer(Q=v.quality))


def run_nginx(work: Path, seconds: float, log: Path, access_log: bool = False) -> WrkResult:
    say("nginx static files (core 0), wrk (core 1)")
    prefix = work / "nginx"
    static = prefix / "static"
    for sub in ("static", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    prerender_warm(static)
    # nginx's worker runs as an unprivileged user when started as root: let it read the files.
    for path in (work, prefix, static, *static.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, static, port, access_log))
    paths = write_paths(work / "warm-nginx.txt", [v.static() for v in warm_variants()])
    server = start_server("nginx", pinned([nginx_binary(), "-p", str(prefix), "-c", str(conf),
                                           "-e", str(prefix / "error.log")], SERVER_CORE),
                          f"http://127.0.0.1:{port}", warm_variants()[0].static(), log)
    try:
        return wrk("nginx warm", server, "warm.lua", [str(paths)], log,
                   connections=WARM_CONNECTIONS, seconds=seconds)
    finally:
        server.stop()


def start_thumbor(work: Path, result_storage: bool, log: Path) -> Server:
    conf = work / f"thumbor-{'warm' if result_storage else 'cold'}.conf"
    result_dir = work / "thumbor-results"
    result_dir.mkdir(exist_ok=True)
    conf.write_text(thumbor_conf(result_storage, result_dir))
    port = free_port()
    cmd = [str(THUMBOR_VENV / "bin" / "thumbor"), "-p", str(port), "-i", "127.0.0.1",
           "-c", str(conf), "-l", "warning"]
    return start_server("thumbor", pinned(cmd, SERVER_CORE), f"http://127.0.0.1:{port}",
                        "/healthcheck", log)


def run_thumbor(work: Path, cold_s: float, warm_s: float, log: Path,
                samples: Sequence[Variant]) -> dict[str, Any]:
    say("thumbor cold (core 0, no result storage), wrk (core 1)")
    cold_paths = write_paths(work / "cold-thumbor.txt",
                             [v.thumbor() for v in with_heights(cold_run_list(0))])
    server = start_thumbor(work, False, log)
    try:
        cold = wrk("thumbor cold", server, "cold.lua", [str(cold_paths), "1"], log,
                   connections=COLD_CONNECTIONS, seconds=cold_s)
        dims = fetch_dimensions(server.base, [v.thumbor() for v in with_heights(samples)])
    finally:
        server.stop()
    say("thumbor warm (core 0, file result storage), wrk (core 1)")
    warm_list = [v.thumbor() for v in with_heights(warm_variants())]
    warm_paths = write_paths(work / "warm-thumbor.txt", warm_list)
    server = start_thumbor(work, True, log)
    try:
        prime(server.base, warm_list)
        warm = wrk("thumbor warm", server, "warm.lua", [str(warm_paths)], log,
                   connections=WARM_CONNECTIONS, seconds=warm_s)
    finally:
        server.stop()
    return {"cold": cold, "warm": warm, "dimensions": dims}


def prime(base: str, paths: Sequence[str]) -> None:
    for path in paths:
        status, _, _ = http_get(base + path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status} while priming")


def fetch_dimensions(base: str, paths: Sequence[str]) -> list[dict[str, Any]]:
    import pyvips

    out = []
    for path in paths:
        status, headers, body = http_get(base + path)
        entry: dict[str, Any] = {"path": path, "status": status,
                                 "content_type": headers.get("Content-Type", "")}
        if status == 200:
            image = pyvips.Image.new_from_buffer(body, "")
            entry.update(width=image.width, height=image.height, bytes=len(body),
                         loader=image.get("vips-loader"))
        out.append(entry)
    return out


def reference_dimensions(samples: Sequence[Variant]) -> list[dict[str, Any]]:
    import pyvips

    out = []
    for v in samples:
        image = pyvips.Image.thumbnail(str(IMAGES / v.photo), v.width)
        out.append({"photo": v.photo, "width": image.width, "height": image.height})
    return out


def dimension_samples() -> list[Variant]:
    cold = cold_run_list(0)
    return [*cold[:6], *cold[1000:1006], *warm_variants()]


# --- ecogram --------------------------------------------------------------------------------


async def _create_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL + "postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL + "postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class SetupError(RuntimeError):
    """ecogram could not be prepared (an endpoint it needs does not answer as API.md says)."""


async def _load_catalogue(base: str) -> dict[str, Any]:
    """Registers the admin, imports the four photos as BENCH-1..4 and approves them."""
    import aiohttp

    async with aiohttp.ClientSession(base) as http:
        async def call(method: str, path: str, step: str, expect: Sequence[int],
                       **kwargs: Any) -> Any:
            async with http.request(method, path, **kwargs) as resp:
                body = await resp.text()
                if resp.status not in expect:
                    raise SetupError(f"{step}: {method} {path} answered {resp.status}: "
                                     f"{body[:300]}")
                return json.loads(body) if body else None

        # The first user of a fresh database becomes admin; a rerun on the same database logs in.
        async with http.post("/api/v1/auth/register", json=ADMIN) as resp:
            if resp.status not in (200, 201, 409, 422):
                raise SetupError(f"register: answered {resp.status}: {(await resp.text())[:300]}")
        login = await call("POST", "/api/v1/auth/login", "login", (200,),
                           json={"email": ADMIN["email"], "password": ADMIN["password"]})
        auth = {"Authorization": f"Bearer {login['access_token']}"}
        ids: dict[str, Any] = {}
        for photo, code in CODES.items():
            form = aiohttp.FormData()
            form.add_field("code", code)
            form.add_field("file", (IMAGES / photo).read_bytes(), filename=photo,
                           content_type="image/jpeg")
            report = await call("POST", "/api/v1/images", f"import {photo}", (200, 201),
                                data=form, headers=auth)
            image_id = find_image_id(report)
            if image_id is None:
                raise SetupError(f"import {photo}: no image id in the report: "
                                 f"{json.dumps(report)[:300]}")
            ids[code] = image_id
            # 409: already approved (a rerun against the same database).
            await call("POST", f"/api/v1/images/{image_id}/approve", f"approve {code}",
                       (200, 409), headers=auth)
        return ids


def find_image_id(report: Any) -> int | None:
    """The image id of the first file of an import report (API.md: each line of ``items`` has
    ``image_id`` when the file was accepted or was a duplicate of an existing record)."""
    for line in report.get("items", []) if isinstance(report, dict) else []:
        if isinstance(line.get("image_id"), int):
            return line["image_id"]
    return None


def ecogram_env(database_url: str, data_dir: Path, log_requests: bool = False) -> dict[str, str]:
    # ECOGRAM_* settings of the caller's environment pass through (to bench another cache size,
    # say) and are listed in the report; these are the benchmark's own.
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "ECOGRAM_SECRET_KEY": BENCH_SECRET,
        "ECOGRAM_DATA_DIR": str(data_dir),
        # Bench settings: any width (the cold list asks ~1,000 of them) and no per-request log
        # lines competing for the one core.
        "ECOGRAM_ALLOWED_SIZES": "*",
        "ECOGRAM_LOG_LEVEL": "warning",
    })
    if log_requests:  # --log-requests: the default level, a log line per request
        del env["ECOGRAM_LOG_LEVEL"]
    env.pop("REDIS_URL", None)
    return env


def cache_budget(env: dict[str, str]) -> dict[str, Any]:
    """The configured per-worker cache budget and the RSS limit the issue sets on it."""
    sys.path.insert(0, str(ROOT))
    from ecogram.settings import Settings

    settings = Settings.from_env(env)
    variants = getattr(settings, "cache_memory_mb", 0)
    masters = getattr(settings, "masters_cache_mb", 0)
    return {"cache_memory_mb": variants, "masters_cache_mb": masters,
            "budget_mb": variants + masters, "limit_mb": variants + masters + 200}


def ecogram_command(port: int, workers: int) -> list[str]:
    script = Path(sys.executable).with_name("ecogram")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "ecogram"]
    return [*base, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


def check_img(base: str) -> str | None:
    """None when /img serves the first warm URL as WebP, else what went wrong."""
    path = warm_variants()[0].ecogram()
    status, headers, body = http_get(base + path)
    if status != 200 or "webp" not in headers.get("Content-Type", ""):
        return f"GET {path} answered {status} {headers.get('Content-Type')}: {body[:200]!r}"
    return None


def run_ecogram(work: Path, args: argparse.Namespace, log: Path,
                samples: Sequence[Variant]) -> dict[str, Any]:
    db_name = f"ecogram_bench_{os.getpid()}"
    database_url = POSTGRES_URL + db_name
    env = ecogram_env(database_url, work / "ecogram-data", args.log_requests)
    out: dict[str, Any] = {"database": db_name, "budget": cache_budget(env),
                           "settings": {k: v for k, v in sorted(env.items())
                                        if k.startswith("ECOGRAM_") and "SECRET" not in k}}
    asyncio.run(_create_database(db_name))
    try:
        # --- one worker pinned to core 0 ---
        say("ecogram --workers 1 (core 0): set-up")
        port = free_port()
        server = start_server("ecogram", pinned(ecogram_command(port, 1), SERVER_CORE),
                              f"http://127.0.0.1:{port}", "/healthz", log, env=env)
        try:
            out["setup"] = asyncio.run(_load_catalogue(server.base))
            problem = check_img(server.base)
            if problem:
                raise SetupError(f"/img: {problem}")
            wait_idle(server.proc.pid)
            with RssSampler(server.proc.pid) as whole_run:
                out.update(ecogram_runs(server, work, args, "w1", block=0,
                                        pin=LOAD_CORE, threads=1, log=log))
                out["dimensions"] = fetch_dimensions(server.base,
                                                     [v.ecogram() for v in samples])
                if not args.warm_only:
                    out["memory"] = memory_run(server, work, args, log)
            if not args.warm_only:
                out["memory"]["whole_session"] = whole_run.summary()
        finally:
            server.stop()
        if args.skip_workers2 or args.warm_only:
            return out
        # --- two workers, nothing pinned ---
        say("ecogram --workers 2 (unpinned), wrk unpinned")
        port = free_port()
        server = start_server("ecogram", ecogram_command(port, 2), f"http://127.0.0.1:{port}",
                              "/healthz", log, env=env)
        try:
            wait_idle(server.proc.pid)
            with RssSampler(server.proc.pid) as sampler:
                out["workers2"] = ecogram_runs(server, work, args, "w2", block=1, pin=None,
                                               threads=2, log=log)
            out["workers2"]["rss"] = sampler.summary()
        finally:
            server.stop()
        return out
    finally:
        asyncio.run(_drop_database(db_name))


def ecogram_runs(server: Server, work: Path, args: argparse.Namespace, tag: str, *,
                 block: int, pin: str | None, threads: int, log: Path) -> dict[str, Any]:
    label = "ecogram" if tag == "w1" else "ecogram --workers 2"
    cold = None
    if not args.warm_only:
        cold_paths = write_paths(work / f"cold-ecogram-{tag}.txt",
                                 [v.ecogram() for v in cold_run_list(block)])
        cold = wrk(f"{label} cold", server, "cold.lua", [str(cold_paths), str(threads)], log,
                   connections=COLD_CONNECTIONS, seconds=args.cold_seconds, threads=threads,
                   pin=pin)
    warm_paths = write_paths(work / "warm-ecogram.txt", [v.ecogram() for v in warm_variants()])
    prime(server.base, [v.ecogram() for v in warm_variants()])
    wait_idle(server.proc.pid)
    warm = wrk(f"{label} warm", server, "warm.lua", [str(warm_paths)], log,
               connections=WARM_CONNECTIONS, seconds=args.warm_seconds, threads=threads, pin=pin)
    return {"cold": cold, "warm": warm}


def memory_run(server: Server, work: Path, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    seconds = args.minutes_memory * 60
    say(f"ecogram memory: {seconds / 60:g} min mixed load ({100 - MIXED_COLD_PERCENT}% warm, "
        f"{MIXED_COLD_PERCENT}% distinct cold), RSS sampled each second")
    warm_paths = work / "warm-ecogram.txt"
    cold_paths = write_paths(work / "cold-ecogram-mixed.txt",
                             [v.ecogram() for v in mixed_cold_variants()])
    with RssSampler(server.proc.pid) as sampler:
        load = wrk("ecogram mixed", server, "mixed.lua",
                   [str(warm_paths), str(cold_paths), str(MIXED_COLD_PERCENT), "1"], log,
                   connections=MIXED_CONNECTIONS, seconds=seconds)
    summary = sampler.summary()
    say(f"  RSS peak {summary.get('peak_process_mb')} MB; first {summary.get('window_s')} s avg "
        f"{summary.get('first_window_avg_mb')} MB, last {summary.get('last_window_avg_mb')} MB")
    return {"load": load, "rss": summary, "metrics": scrape_metrics(server.base),
            "timeline": [(round(t), round(mb, 1)) for t, mb, _ in sampler.samples[::10]]}


def scrape_metrics(base: str) -> dict[str, float]:
    """ecogram's /img counters (and any cache-size gauge) after the memory run, for the record:
    how many answers came from memory and how many were rendered, from what."""
    try:
        status, _, body = http_get(base + "/metrics", timeout=10)
    except OSError:
        return {}
    if status != 200:
        return {}
    out: dict[str, float] = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("ecogram_img_") or ("cache" in line and "bytes" in line
                                               and line.startswith("ecogram_")):
            name, _, value = line.rpartition(" ")
            if not name.endswith(("_bucket", "_created")) and "_bucket{" not in name:
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
    return out


# --------------------------------------------------------------------------------------------
# Report


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The comparisons the issue asks for, and whether each target is met."""
    def rps(*keys: str) -> float | None:
        node: Any = results
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node.rps if isinstance(node, WrkResult) else None

    def per_cpu(*keys: str) -> float | None:
        node: Any = results
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node.per_cpu_s if isinstance(node, WrkResult) else None

    eco_cold, eco_warm = rps("ecogram", "cold"), rps("ecogram", "warm")
    bare = (results.get("bare_pyvips") or {}).get("per_second")
    out: dict[str, Any] = {
        "cold_vs_thumbor": ratio(eco_cold, rps("thumbor", "cold")),
        "cold_vs_bare_pyvips": ratio(eco_cold, bare),
        "warm_vs_thumbor": ratio(eco_warm, rps("thumbor", "warm")),
        "warm_vs_nginx": ratio(eco_warm, rps("nginx")),
    }
    # The same ratios per server CPU second: a cross-check when the machine was not quiet.
    out["per_cpu"] = {
        "cold_vs_thumbor": ratio(per_cpu("ecogram", "cold"), per_cpu("thumbor", "cold")),
        "cold_vs_bare_pyvips": ratio(per_cpu("ecogram", "cold"),
                                     (results.get("bare_pyvips") or {}).get("per_cpu_s")),
        "warm_vs_thumbor": ratio(per_cpu("ecogram", "warm"), per_cpu("thumbor", "warm")),
        "warm_vs_nginx": ratio(per_cpu("ecogram", "warm"), per_cpu("nginx")),
    }
    warm = (results.get("ecogram") or {}).get("warm")
    out["warm_p99_ms"] = warm.p99_ms if isinstance(warm, WrkResult) else None
    verdict = {}
    for key, target in TARGETS.items():
        value = out[key]
        if value is None:
            verdict[key] = "not measured"
        elif key == "warm_p99_ms":
            verdict[key] = "meets" if value < target else "misses"
        else:
            verdict[key] = "meets" if value >= target else "misses"
    memory = (results.get("ecogram") or {}).get("memory", {}).get("rss", {})
    budget = (results.get("ecogram") or {}).get("budget", {})
    if memory and budget:
        out["memory_peak_mb"] = memory["peak_process_mb"]
        out["memory_limit_mb"] = budget["limit_mb"]
        verdict["memory_peak"] = ("meets" if memory["peak_process_mb"] <= budget["limit_mb"]
                                  else "misses")
    out["verdict"] = verdict
    return out


def dimension_check(results: dict[str, Any], samples: Sequence[Variant]) -> list[dict[str, Any]]:
    reference = results.get("reference_dimensions") or []
    thumbor = (results.get("thumbor") or {}).get("dimensions") or []
    ecogram = (results.get("ecogram") or {}).get("dimensions") or []
    rows = []
    for i, v in enumerate(samples):
        def dims(entries: list[dict[str, Any]], i: int = i) -> str | None:
            if i >= len(entries) or "width" not in entries[i]:
                return None
            return f"{entries[i]['width']}x{entries[i]['height']}"
        rows.append({"photo": v.photo, "w": v.width,
                     "pyvips": dims(reference), "thumbor": dims(thumbor),
                     "ecogram": dims(ecogram)})
    return rows


def fmt_rps(result: WrkResult | None) -> list[str]:
    if result is None:
        return ["—"] * 6
    per_cpu = f"{result.per_cpu_s:,.1f}" if result.per_cpu_s else "—"
    return [f"{result.rps:,.1f}", per_cpu, f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}",
            f"{result.requests:,}", str(result.error_count)]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Delivery benchmark — {results['started']}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, libvips {m['libvips']}; tools: "
        + ", ".join(f"{k} {v}" for k, v in results.get("tools", {}).items()) + ".",
        f"Load average at start {tuple(round(x, 2) for x in m['loadavg_at_start'])}, at end "
        f"{tuple(round(x, 2) for x in results.get('loadavg_at_end', ()))}"
        + (" — **quick run: a smoke test, not figures to quote**" if results["quick"] else "")
        + (" — warm only: nginx and ecogram" if results.get("warm_only") else "")
        + ".",
        "",
    ]
    if max(m["loadavg_at_start"][0], *results.get("loadavg_at_end", (0,))[:1]) > BUSY_LOAD:
        lines += ["**The machine was busy** (load average above the benchmark's own ~2): other "
                  "work competed for both cores, so read the ratios, preferably per server "
                  "CPU second, and take figures to quote on a quiet machine.", ""]
    lines += [
        "Server on core 0, wrk on core 1 (except the `--workers 2` rows: nothing pinned). "
        f"Cold: distinct URLs, each once, {COLD_CONNECTIONS} connections, "
        f"{results['settings']['cold_seconds']:g} s; warm: the same 8 URLs, "
        f"{WARM_CONNECTIONS} connections, {results['settings']['warm_seconds']:g} s. "
        "WebP q80 everywhere. *per server CPU-s*: requests per CPU second the server's "
        "processes used in the run, a cross-check that other load on the machine moves less "
        "than req/s.",
        "",
        "| contender | run | req/s | per server CPU-s | p50 ms | p99 ms | requests | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bare = results.get("bare_pyvips")
    if bare:
        lines.append(f"| bare pyvips loop | cold | {bare['per_second']:,.2f} | "
                     f"{bare.get('per_cpu_s') or '—'} | — | — | {bare['transforms']:,} | — |")
    rows = [("nginx (static files)", "warm", results.get("nginx"))]
    for name, key in (("thumbor 7.8", "thumbor"), ("ecogram", "ecogram")):
        block = results.get(key) or {}
        rows += [(name, "cold", block.get("cold")), (name, "warm", block.get("warm"))]
    w2 = (results.get("ecogram") or {}).get("workers2") or {}
    rows += [("ecogram --workers 2", "cold", w2.get("cold")),
             ("ecogram --workers 2", "warm", w2.get("warm"))]
    for name, run, result in rows:
        if result is not None:
            lines.append(f"| {name} | {run} | " + " | ".join(fmt_rps(result)) + " |")
    for key in ("thumbor", "ecogram"):
        if results.get(f"{key}_error"):
            problem = " ".join(str(results[f"{key}_error"]).split())
            lines += ["", f"**{key} not measured**: {problem}"]

    fig = results["figures"]
    lines += ["", "| ratio | measured | per CPU-s | target | verdict |",
              "| --- | ---: | ---: | ---: | --- |"]
    labels = {
        "cold_vs_thumbor": ("ecogram / thumbor, cold", "≥ 1.5"),
        "cold_vs_bare_pyvips": ("ecogram / bare pyvips loop, cold", "≥ 1.0"),
        "warm_vs_thumbor": ("ecogram / thumbor (file result storage), warm", "≥ 5"),
        "warm_vs_nginx": ("ecogram / nginx static, warm", "≥ 0.25"),
        "warm_p99_ms": ("ecogram warm p99 (ms)", "< 10"),
    }
    for key, (label, target) in labels.items():
        value = fig.get(key)
        cpu = fig.get("per_cpu", {}).get(key)
        lines.append(f"| {label} | {value if value is not None else '—'} | "
                     f"{cpu if cpu is not None else '—'} | {target} | "
                     f"{fig['verdict'].get(key, '')} |")

    eco = results.get("ecogram") or {}
    if eco.get("settings"):
        lines += ["", "ecogram settings: " + ", ".join(f"`{k}={v}`" for k, v in
                                                     eco["settings"].items()) + "."]
    mem = eco.get("memory") or {}
    if mem.get("rss"):
        rss, budget = mem["rss"], eco["budget"]
        load = mem["load"]
        lines += [
            "",
            f"Memory (ecogram, one worker, {rss['duration_s']:g} s mixed run: "
            f"{100 - MIXED_COLD_PERCENT}% warm, {MIXED_COLD_PERCENT}% distinct cold, "
            f"{MIXED_CONNECTIONS} connections; {load.rps:,.1f} req/s, {load.error_count} errors):",
            "",
            "| peak RSS MB | limit MB (cache budget + 200) | first "
            f"{rss['window_s']:g} s avg MB | last {rss['window_s']:g} s avg MB | growth MB | "
            "last third MB/min | verdict |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {rss['peak_process_mb']} | {budget['limit_mb']} ({budget['cache_memory_mb']} "
            f"variants + {budget['masters_cache_mb']} masters + 200) | "
            f"{rss['first_window_avg_mb']} | {rss['last_window_avg_mb']} | {rss['growth_mb']} | "
            f"{rss.get('last_third_mb_per_min')} | {fig['verdict'].get('memory_peak', '')} |",
        ]
        served = {k.split('tier="')[1].split('"')[0]: int(v)
                  for k, v in (mem.get("metrics") or {}).items()
                  if k.startswith("ecogram_img_served_total{") and 'tier="' in k}
        if served:
            lines.append("\n/img answers during the session by source (ecogram's /metrics): "
                         + ", ".join(f"{k} {v:,}" for k, v in sorted(served.items())) + ".")
        whole = mem.get("whole_session") or {}
        if whole:
            lines.append(f"\nPeak RSS over the whole one-worker session (cold, warm and memory "
                         f"runs): {whole['peak_process_mb']} MB.")
        w2rss = (eco.get("workers2") or {}).get("rss") or {}
        if w2rss:
            lines.append(f"With `--workers 2`: largest process peak {w2rss['peak_process_mb']} MB,"
                         f" all processes together {w2rss['peak_total_mb']} MB.")

    dims = results.get("dimension_check") or []
    if dims:
        unequal = [d for d in dims if len({d[k] for k in ("pyvips", "thumbor", "ecogram")
                                           if d[k] is not None}) > 1]
        lines += ["", f"Output dimensions, {len(dims)} sample URLs (pyvips thumbnail = reference):"
                  f" {'all equal' if not unequal else f'{len(unequal)} differ'}.", ""]
        if unequal:
            lines += ["| photo | w | pyvips | thumbor | ecogram |",
                      "| --- | ---: | --- | --- | --- |"]
            lines += [f"| {d['photo']} | {d['w']} | {d['pyvips']} | {d['thumbor']} | "
                      f"{d['ecogram']} |" for d in unequal]
    exhausted = [r.name for r in all_wrk(results) if r.exhausted]
    if exhausted:
        lines.append(f"\nThe URL list ran out before the planned duration in: "
                     f"{', '.join(exhausted)} (the rate is counted until the last wrk thread "
                     "stopped).")
    errored = [f"{r.name} ({r.errors})" for r in all_wrk(results) if r.error_count]
    if errored:
        lines.append(f"\n**Errors** (non-2xx/3xx answers or socket errors): {'; '.join(errored)}")
    return "\n".join(lines) + "\n"


def all_wrk(node: Any) -> Iterator[WrkResult]:
    if isinstance(node, WrkResult):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from all_wrk(value)


def to_json(node: Any) -> Any:
    if isinstance(node, WrkResult):
        return {k: v for k, v in node.__dict__.items()}
    if isinstance(node, dict):
        return {k: to_json(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_json(v) for v in node]
    return node


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs (a smoke test of the harness, not figures to quote)")
    parser.add_argument("--skip-thumbor", action="store_true", help="leave thumbor out")
    parser.add_argument("--skip-ecogram", action="store_true",
                        help="baselines only (bare pyvips, nginx, thumbor)")
    parser.add_argument("--skip-workers2", action="store_true",
                        help="leave out the --workers 2 runs")
    parser.add_argument("--warm-only", action="store_true",
                        help="only nginx and ecogram warm (~3 minutes): to check a change to the "
                             "hot path; the full run gives the figures to quote")
    parser.add_argument("--minutes-memory", type=float, default=None,
                        help="length of the mixed memory run (default 10; --quick: 0.5)")
    parser.add_argument("--cold-seconds", type=float, default=None,
                        help="length of each cold run (default 30; --quick: 8)")
    parser.add_argument("--warm-seconds", type=float, default=None,
                        help="length of each warm run (default 30; --quick: 6)")
    parser.add_argument("--log-requests", action="store_true",
                        help="both log every request: nginx with its access log on, ecogram at "
                             "its default log level (info) instead of warning")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the temporary folder with configs, lists and logs")
    parser.add_argument("--bare-loop-worker", nargs=2, metavar=("LIST", "SECONDS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.minutes_memory is None:
        args.minutes_memory = 0.5 if quick else 10.0
    if args.cold_seconds is None:
        args.cold_seconds = 8.0 if quick else 30.0
    if args.warm_seconds is None:
        args.warm_seconds = 6.0 if quick else 30.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_loop_worker:
        bare_loop_worker(args.bare_loop_worker[0], float(args.bare_loop_worker[1]))
        return 0
    if (os.cpu_count() or 1) < 2:
        say("this benchmark needs two cores (server on core 0, wrk on core 1)")
        return 2
    started = dt.datetime.now()
    ensure_images()
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "warm_only": args.warm_only,
        "log_requests": args.log_requests,
        "settings": {"cold_seconds": args.cold_seconds, "warm_seconds": args.warm_seconds,
                     "minutes_memory": args.minutes_memory,
                     "cold_connections": COLD_CONNECTIONS,
                     "warm_connections": WARM_CONNECTIONS,
                     "mixed_connections": MIXED_CONNECTIONS,
                     "mixed_cold_percent": MIXED_COLD_PERCENT},
        "machine": machine(),
    }
    results["tools"] = ensure_tools(args.skip_thumbor)
    work = Path(tempfile.mkdtemp(prefix="ecogram-delivery-bench-"))
    log = work / "run.log"
    say(f"work folder {work} (wrk output and server logs in {log})")
    samples = dimension_samples()
    try:
        results["reference_dimensions"] = reference_dimensions(samples)
        # Bare loop as long as a cold run, plus a little: its rate is the per-core ceiling.
        if not args.warm_only:
            results["bare_pyvips"] = run_bare_loop(work, args.cold_seconds)
        results["nginx"] = run_nginx(work, args.warm_seconds, log, args.log_requests)
        if not (args.skip_thumbor or args.warm_only):
            try:
                results["thumbor"] = run_thumbor(work, args.cold_seconds, args.warm_seconds, log,
                                                 samples)
            except RuntimeError as exc:
                results["thumbor_error"] = str(exc)[:500]
                say(f"thumbor: {exc}")
        if not args.skip_ecogram:
            try:
                results["ecogram"] = run_ecogram(work, args, log, samples)
            except (SetupError, RuntimeError, OSError) as exc:
                results["ecogram_error"] = str(exc)[:500]
                say(f"ecogram not measured: {exc}")
    finally:
        results["loadavg_at_end"] = os.getloadavg()
        results["dimension_check"] = dimension_check(results, samples)
        results["figures"] = figures(results)
        report = markdown(results)
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"delivery-{started:%Y-%m-%d-%H%M}"
        stem.with_suffix(".md").write_text(report)
        stem.with_suffix(".json").write_text(json.dumps(to_json(results), indent=2) + "\n")
        if log.exists():
            shutil.copyfile(log, stem.with_suffix(".log"))
        if not args.keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        print()
        print(report)
        say(f"written: {stem}.md, {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
