"""Channel renditions per second on one core (issue 13): ``render_for_channel`` in a loop.

    .venv/bin/python bench/channel_bench.py                    # 5 rounds, ~1 minute
    .venv/bin/python bench/channel_bench.py --rounds 1         # smoke run: not figures to quote

The process pins itself to one core (``os.sched_setaffinity``, like ``taskset -c 0``) and keeps
libvips at one thread per pipeline (``vips.configure(1)``, the server's setting), then renders
every photo of ``bench/images/`` (the shared bench photos: a 3648x2736 camera JPEG, a 2000x1072
photo, a 3000x3000 product shot on white, a 3000x2000 noise worst case) for each channel, from
the original's bytes, as ``/img/{code}?preset={channel}`` would on a cache miss. One warm-up
round, then ``--rounds`` timed rounds. It prints a Markdown report: renditions per second (wall)
and per CPU second (the process's own CPU time: the cross-check when other work shares the core),
and per photo and channel the median milliseconds, the output and what was done.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from ecogram.channels import load_profiles  # noqa: E402
from ecogram.imaging.product import render_for_channel  # noqa: E402
from ecogram.imaging.vips import configure  # noqa: E402

IMAGES = BENCH / "images"
SHARED_IMAGES = ROOT.parent / "shared" / "bench-images"
PHOTOS = ("photo1.jpg", "photo2.jpg", "product.jpg", "noise.jpg")
CHANNELS = ("mercadolivre", "amazon_br", "magalu", "shopee", "google")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pin(core: int) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--channels", default=",".join(CHANNELS),
                        help="comma-separated channel ids (default: %(default)s)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of the bench photos (default bench/images, else "
                        "../shared/bench-images)")
    parser.add_argument("--core", type=int, default=0, help="core to pin to (default 0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    args = parser.parse_args(argv)

    folder = args.images or (IMAGES if (IMAGES / PHOTOS[0]).exists() else SHARED_IMAGES)
    photos = {name: (folder / name).read_bytes() for name in PHOTOS if (folder / name).exists()}
    if not photos:
        parser.error(f"no bench photos in {folder}")
    profiles = load_profiles()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = [c for c in channels if c not in profiles]
    if unknown:
        parser.error(f"unknown channel {unknown[0]!r}; known: {', '.join(profiles)}")
    pinned = "not pinned" if args.no_pin else pin(args.core)
    configure(1)

    pairs = [(photo, channel) for photo in photos for channel in channels]
    results = {pair: render_for_channel(photos[pair[0]], profiles[pair[1]], main=True)
               for pair in pairs}  # warm-up round, and what each rendition is
    times: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    load_start = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.rounds):
        for photo, channel in pairs:
            start = time.perf_counter()
            render_for_channel(photos[photo], profiles[channel], main=True)
            times[photo, channel].append(time.perf_counter() - start)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    load_end = os.getloadavg()
    count = len(pairs) * args.rounds

    print("## Channel renditions\n")
    print(f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"- machine: {os.cpu_count()} cores (nproc), {cpu_model()}; {pinned}; "
          f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}, "
          f"one thread per pipeline; Python {platform.python_version()}")
    print(f"- load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"- photos from {folder}; channels {', '.join(channels)}; {args.rounds} rounds "
          f"after one warm-up round\n")
    print(f"**{count / wall:.2f} renditions/s** on one core (wall), "
          f"**{count / cpu:.2f} per CPU second** ({count} renditions in {wall:.1f} s, "
          f"{cpu:.1f} CPU-s)\n")
    print("| photo | channel | median ms | output | bytes | q | done | findings |")
    print("| --- | --- | ---: | --- | ---: | ---: | --- | --- |")
    for photo, channel in pairs:
        r = results[photo, channel]
        median = statistics.median(times[photo, channel]) * 1000
        print(f"| {photo} | {channel} | {median:.0f} | {r.width}x{r.height} {r.format} | "
              f"{len(r.data):,} | {r.quality or '—'} | {', '.join(r.steps) or '—'} | "
              f"{', '.join(r.codes) or '—'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
