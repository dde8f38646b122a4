"""The delivery benchmark's scripts stay runnable: lists, configs, wrk scripts, report, locustfile.

Nothing here measures speed: the benchmark itself is `bench/delivery_bench.py` (bench/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def _load_harness():
    spec = importlib.util.spec_from_file_location("delivery_bench", BENCH / "delivery_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["delivery_bench"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _load_harness()


def test_cold_rotations_are_distinct_and_disjoint() -> None:
    rotations = [bench.cold_variants(r) for r in range(4)]
    for variants in rotations:
        assert {v.width for v in variants} == set(bench.COLD_WIDTHS)
        # No cold URL is one the warm runs prime.
        assert not {v.width for v in variants} & set(bench.WARM_WIDTHS)
    every = [(v.photo, v.width) for variants in rotations for v in variants]
    assert len(set(every)) == len(every) == 4 * len(bench.COLD_WIDTHS)
    assert min(bench.COLD_WIDTHS) == 160 and max(bench.COLD_WIDTHS) == 1200


def test_cold_run_lists_never_repeat_a_url() -> None:
    first, second = bench.cold_run_list(0), bench.cold_run_list(1)
    for block in (first, second):
        urls = [v.ecogram() for v in block]
        assert len(urls) == len(set(urls)) == 2 * len(bench.COLD_WIDTHS)
    assert not {v.ecogram() for v in first} & {v.ecogram() for v in second}
    # The same order every time, so every contender gets the same prefix.
    assert bench.cold_run_list(0) == first
    # Any prefix spans small and large widths and all four photos.
    head = first[:100]
    assert min(v.width for v in head) < 400 < 800 < max(v.width for v in head)
    assert set(Counter(v.photo for v in head)) == set(bench.PHOTOS)


def test_mixed_list_is_distinct_and_avoids_the_cold_runs() -> None:
    mixed = [v.ecogram() for v in bench.mixed_cold_variants()]
    assert len(mixed) == len(set(mixed))
    cold = {v.ecogram() for block in (0, 1) for v in bench.cold_run_list(block)}
    warm = {v.ecogram() for v in bench.warm_variants()}
    assert not (cold | warm) & set(mixed)


def test_urls_of_each_contender() -> None:
    v = bench.Variant("photo1.jpg", 400, height=300)
    assert v.ecogram() == "/img/BENCH-1?w=400&fmt=webp&q=80"
    assert v.thumbor() == "/unsafe/400x300/filters:format(webp):quality(80)/photo1.jpg"
    assert v.static() == "/photo1-400.webp"
    warm = bench.warm_variants()
    assert len(warm) == 8 and {w.width for w in warm} == {400, 800}


def test_heights_are_those_of_pyvips_thumbnail() -> None:
    import pyvips

    for v in bench.with_heights(bench.cold_run_list(0)[:6]):
        assert v.height == pyvips.Image.thumbnail(str(bench.IMAGES / v.photo), v.width).height


def test_nginx_conf_renders_and_nginx_accepts_it(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (tmp_path / "tmp").mkdir()
    conf = bench.nginx_conf(tmp_path, root, 18089)
    assert "$" not in conf
    assert "worker_processes 1;" in conf and "listen 127.0.0.1:18089;" in conf
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (the benchmark installs it)")
    (tmp_path / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                            "-e", str(tmp_path / "error.log")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_log_requests_turns_nginx_access_log_on_and_ecogram_to_its_default_level(
        tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (tmp_path / "tmp").mkdir()
    assert "access_log off;" in bench.nginx_conf(tmp_path, root, 18089)
    conf = bench.nginx_conf(tmp_path, root, 18089, access_log=True)
    assert f"access_log {tmp_path}/access.log;" in conf
    env = bench.ecogram_env("postgresql://postgres@127.0.0.1:5432/x", tmp_path,
                            log_requests=True)
    assert "ECOGRAM_LOG_LEVEL" not in env  # the default, info: a line per request
    assert bench.parse_args(["--warm-only", "--log-requests"]).log_requests
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (the benchmark installs it)")
    (tmp_path / "nginx.conf").write_text(conf)
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                            "-e", str(tmp_path / "error.log")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_quality_compare_draws_distinct_deterministic_product_photos(tmp_path: Path) -> None:
    import hashlib

    import pyvips

    spec = importlib.util.spec_from_file_location("quality_compare",
                                                  BENCH / "quality_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "a").mkdir()
    paths = module.synthetic_photos(tmp_path / "a", 4)
    assert [p.name.split("-")[1] for p in paths] == ["white", "lifestyle", "textile", "glossy"]
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert len(digests) == 4
    for path in paths:
        image = pyvips.Image.new_from_file(str(path))
        assert min(image.width, image.height) >= 1000 and image.bands == 3
    (tmp_path / "b").mkdir()
    again = module.synthetic_photos(tmp_path / "b", 1)
    assert hashlib.sha256(again[0].read_bytes()).hexdigest() == hashlib.sha256(
        paths[0].read_bytes()).hexdigest()


@pytest.mark.parametrize("result_storage", [False, True])
def test_thumbor_conf_is_python(tmp_path: Path, result_storage: bool) -> None:
    namespace: dict[str, object] = {}
    exec(compile(bench.thumbor_conf(result_storage, tmp_path), "thumbor.conf", "exec"), namespace)
    assert namespace["LOADER"] == "thumbor.loaders.file_loader"
    assert namespace["FILE_LOADER_ROOT_PATH"] == str(bench.IMAGES)
    assert namespace["ALLOW_UNSAFE_URL"] is True
    expected = "thumbor.result_storages.file_storage" if result_storage else None
    assert namespace["RESULT_STORAGE"] == expected


def test_parse_wrk_reads_the_report_line() -> None:
    output = ("Running 1s test @ http://127.0.0.1:1\n  Latency ...\n"
              'WRK_JSON {"requests":300,"duration_us":2000000,"bytes":1000,'
              '"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":0},'
              '"latency_us":{"min":10,"mean":50.0,"max":900,"stdev":3.0,'
              '"p50":40,"p90":80,"p99":700,"p999":850}}\n')
    result = bench.parse_wrk("x", output)
    assert result.rps == 150.0
    assert (result.p50_ms, result.p99_ms) == (0.04, 0.7)
    assert result.error_count == 2
    with pytest.raises(RuntimeError, match="no summary"):
        bench.parse_wrk("x", "Running 1s test\n")


def test_wrk_command_pins_to_the_load_core() -> None:
    cmd = bench.wrk_command("http://127.0.0.1:1", "warm.lua", ["paths.txt"], connections=16,
                            seconds=30)
    assert cmd[:3] == ["taskset", "-c", "1"]
    assert "-c16" in cmd and "-d30s" in cmd and cmd[-2:] == ["--", "paths.txt"]
    assert str(bench.WRK_DIR / "warm.lua") in cmd
    assert bench.wrk_command("http://x", "cold.lua", [], connections=4, seconds=5,
                             pin=None)[0] == "wrk"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk drops its connections at the end without a goodbye


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Counter[str]

    def do_GET(self) -> None:
        self.seen[self.path] += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_cold_script_requests_each_url_at_most_once(tmp_path: Path) -> None:
    _Recorder.seen = Counter()
    server = _Server(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        paths = [f"/img/P?w={w}" for w in range(200, 260)]
        listing = bench.write_paths(tmp_path / "cold.txt", paths)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        cmd = bench.wrk_command(base, "cold.lua", [str(listing), "2"], connections=4,
                                seconds=5, threads=2, pin=None)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        result = bench.parse_wrk("cold", out.stdout)
    finally:
        server.shutdown()
    served = {p: n for p, n in _Recorder.seen.items() if p in paths}
    assert all(n == 1 for n in served.values()), served
    # The list is short: both threads ran out and stopped long before the 5 s were up. (wrk
    # calls the first thread's request() once at start-up to check it: that URL is skipped.)
    assert len(served) >= len(paths) - 1
    assert result.requests <= len(paths)
    # ...and the rate is counted over the span until they stopped, not the whole 5 s.
    assert result.exhausted and result.duration_s < 4
    assert set(_Recorder.seen) <= {*paths, "/__cold_list_exhausted__"}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_warm_and_mixed_scripts_run(tmp_path: Path) -> None:
    _Recorder.seen = Counter()
    server = _Server(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        warm = bench.write_paths(tmp_path / "warm.txt", [f"/warm/{i}" for i in range(8)])
        cold = bench.write_paths(tmp_path / "cold.txt", [f"/cold/{i}" for i in range(1000)])
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for script, args in (("warm.lua", [str(warm)]),
                             ("mixed.lua", [str(warm), str(cold), "10", "1"])):
            cmd = bench.wrk_command(base, script, args, connections=2, seconds=1, pin=None)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert bench.parse_wrk(script, out.stdout).requests > 0
    finally:
        server.shutdown()
    assert {f"/warm/{i}" for i in range(8)} <= set(_Recorder.seen)
    assert any(p.startswith("/cold/") for p in _Recorder.seen)


def test_image_id_is_found_in_an_import_report() -> None:
    report = {"batch_id": 3, "items": [{"seq": 1, "outcome": "accepted", "image_id": 42}]}
    assert bench.find_image_id(report) == 42
    duplicate = {"items": [{"seq": 1, "outcome": "duplicate", "image_id": 7}]}
    assert bench.find_image_id(duplicate) == 7
    assert bench.find_image_id({"items": [{"outcome": "rejected", "code": "too_small"}]}) is None


def _wrk(name: str, rps: float, p99: float = 5.0) -> object:
    return bench.WrkResult(name, int(rps * 10), 10.0, rps, 1.0, 2.0, p99, 20.0,
                           {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}, 0)


def test_report_gives_ratios_and_verdicts() -> None:
    results = {
        "started": "2026-11-28T00:00:00", "quick": False,
        "settings": {"cold_seconds": 30, "warm_seconds": 30},
        "machine": {"nproc": 2, "cpu": "x", "ram_gb": 1, "kernel": "k", "python": "3.11",
                    "libvips": "8", "loadavg_at_start": (0, 0, 0)},
        "loadavg_at_end": (0, 0, 0), "tools": {},
        "bare_pyvips": {"per_second": 10.0, "transforms": 300},
        "nginx": _wrk("nginx", 40000),
        "thumbor": {"cold": _wrk("t cold", 10), "warm": _wrk("t warm", 1000)},
        "ecogram": {"cold": _wrk("e cold", 16), "warm": _wrk("e warm", 4000, p99=12),
                    "budget": {"cache_memory_mb": 256, "masters_cache_mb": 128,
                               "budget_mb": 384, "limit_mb": 584},
                    "memory": {"load": _wrk("mixed", 100),
                               "rss": {"duration_s": 600, "window_s": 60,
                                       "peak_process_mb": 400.0, "peak_total_mb": 400.0,
                                       "first_window_avg_mb": 300.0,
                                       "last_window_avg_mb": 310.0, "growth_mb": 10.0}}},
        "dimension_check": [],
    }
    fig = bench.figures(results)
    assert fig["cold_vs_thumbor"] == 1.6 and fig["verdict"]["cold_vs_thumbor"] == "meets"
    assert fig["warm_vs_thumbor"] == 4.0 and fig["verdict"]["warm_vs_thumbor"] == "misses"
    assert fig["verdict"]["warm_p99_ms"] == "misses"
    assert fig["verdict"]["memory_peak"] == "meets"
    results["figures"] = fig
    text = bench.markdown(results)
    assert "| ecogram / thumbor, cold | 1.6 | — | ≥ 1.5 | meets |" in text
    assert "584" in text
    json.dumps(bench.to_json(results))


def test_rss_summary_compares_the_first_and_last_minute() -> None:
    sampler = bench.RssSampler(pid=0)
    sampler.samples = [(float(t), 100.0 + (10.0 if t > 500 else 0.0), 0.0) for t in range(601)]
    summary = sampler.summary()
    assert summary["window_s"] == 60
    assert summary["first_window_avg_mb"] == 100.0 and summary["last_window_avg_mb"] == 110.0
    assert summary["peak_process_mb"] == 110.0 and summary["growth_mb"] == 10.0


def test_locustfile_lists_both_mixes() -> None:
    locust = Path(sys.executable).with_name("locust")
    if not locust.exists():
        pytest.skip("locust is not installed")
    out = subprocess.run([str(locust), "-f", str(BENCH / "locustfile.py"), "--list"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "StorefrontUser" in out.stdout and "StaffUser" in out.stdout


def test_ecogram_is_started_with_the_bench_settings(tmp_path: Path) -> None:
    env = bench.ecogram_env("postgresql://postgres@127.0.0.1:5432/x", tmp_path)
    assert env["ECOGRAM_ALLOWED_SIZES"] == "*" and env["ECOGRAM_LOG_LEVEL"] == "warning"
    assert env["DATABASE_URL"].endswith("/x") and "REDIS_URL" not in env
    budget = bench.cache_budget(env)
    assert budget["limit_mb"] == budget["cache_memory_mb"] + budget["masters_cache_mb"] + 200
    cmd = bench.ecogram_command(8099, 2)
    assert cmd[-7:] == ["serve", "--host", "127.0.0.1", "--port", "8099", "--workers", "2"]


def test_slope_is_in_mb_per_minute() -> None:
    assert bench.slope([(float(t), 100.0 + t / 60) for t in range(0, 300, 10)]) == 1.0
    assert bench.slope([(float(t), 250.0) for t in range(10)]) == 0.0
    assert bench.slope([(0.0, 1.0)]) is None


def test_a_warm_only_report_gives_the_nginx_ratio_and_leaves_the_rest_unmeasured() -> None:
    args = bench.parse_args(["--warm-only", "--warm-seconds", "5"])
    assert args.warm_only and args.warm_seconds == 5

    def run(rps: float) -> object:
        return bench.WrkResult(name="x", requests=int(rps * 5), duration_s=5.0, rps=rps,
                               p50_ms=1.0, p90_ms=2.0, p99_ms=3.0, max_ms=4.0,
                               errors={"connect": 0}, bytes=1)

    results = {
        "started": "2026-11-28T05:00:00", "quick": False, "warm_only": True,
        "settings": {"cold_seconds": 30.0, "warm_seconds": 5.0, "minutes_memory": 10.0,
                     "cold_connections": 4, "warm_connections": 16, "mixed_connections": 16,
                     "mixed_cold_percent": 5},
        "machine": {"nproc": 2, "cpu": "test", "ram_gb": 1.0, "kernel": "x", "python": "3.11",
                    "libvips": "8", "loadavg_at_start": (0.1, 0.1, 0.1)},
        "loadavg_at_end": (0.2, 0.2, 0.2),
        "nginx": run(40_000.0),
        "ecogram": {"warm": run(12_000.0), "cold": None},
    }
    results["figures"] = figures = bench.figures(results)
    assert figures["warm_vs_nginx"] == 0.3
    assert figures["verdict"]["warm_vs_nginx"] == "meets"
    assert figures["verdict"]["cold_vs_thumbor"] == "not measured"
    results["dimension_check"] = []
    report = bench.markdown(results)
    assert "warm only" in report and "0.3" in report
