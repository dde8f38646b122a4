"""Cold renders per second on one core: AVIF at a few encoder efforts beside WebP.

    PYTHONPATH=. .venv/bin/python bench/avif_effort_bench.py [--efforts 0,2,4] [--seconds 8]

In-process, one libvips thread (VIPS_CONCURRENCY=1), the process pinned to one core, libvips'
operation cache off. Each photo of the bench set (../shared/bench-images, else bench/images)
becomes a master (``pipeline.make_master``, 2048 px) decoded into memory once
(``pipeline.decode_master``: what the masters cache holds), then ``pipeline.render`` is called
round robin over the photos and the widths 300..1100 step 100 (400 and 800 included) for
``--seconds`` per setting: a cold render from a cached master, as ``/img`` does for a size it
has not served. ``pipeline.AVIF_EFFORT`` is set for each AVIF run (the code is not changed);
quality is each format's fixed default (``pipeline.DEFAULT_QUALITY``) unless ``--avif-q`` /
``--webp-q`` are given. Prints renders per CPU-second (the list shuffled with a fixed seed, so
a slow setting's partial pass still mixes sizes), and the mean bytes and SSIMULACRA2 of the
400- and 800-wide outputs of the four photos (the same 8 for every setting) against a plain
thumbnail of the master.
"""

from __future__ import annotations

import os

os.environ.setdefault("VIPS_CONCURRENCY", "1")

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import pyvips

from ecogram.imaging import pipeline, quality
from ecogram.imaging.options import RenderOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
import delivery_bench as db

WIDTHS = tuple(range(300, 1101, 100))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--efforts", default="0,2,4")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--core", type=int, default=1)
    parser.add_argument("--avif-q", type=int, default=None)
    parser.add_argument("--webp-q", type=int, default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    pyvips.cache_set_max(0)
    source = db.SHARED_IMAGES if db.SHARED_IMAGES.exists() else db.IMAGES
    masters = []
    for name in db.PHOTOS:
        master = pipeline.make_master((source / name).read_bytes(), 2048)
        decoded = pipeline.decode_master(master.data)
        masters.append((name, decoded, decoded.levels[0].width, decoded.levels[0].height))
    settings = [("webp", None)] + [("avif", int(e)) for e in args.efforts.split(",")]
    print(f"one core (cpu {args.core}), VIPS_CONCURRENCY={os.environ['VIPS_CONCURRENCY']}, "
          f"load {os.getloadavg()}, {args.seconds:.0f} s per setting")
    print("| format | effort | q | renders per CPU-s | per wall-s | mean bytes 400/800 | "
          "mean score 400/800 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt, effort in settings:
        if effort is not None:
            pipeline.AVIF_EFFORT = effort
        q = args.avif_q if fmt == "avif" else args.webp_q
        jobs = [(m, w) for w in WIDTHS for m in masters]
        # shuffled with a fixed seed: a slow setting that renders only part of the list in
        # its time still mixes small and large widths and the four photos
        random.Random(1).shuffle(jobs)
        # bytes and scores of the same 8 outputs for every setting (not timed)
        scores, sizes = [], []
        for (_name, decoded, mw, mh), width in jobs:
            if width not in (400, 800):
                continue
            out = pipeline.render(decoded, RenderOptions(width=width, quality=q), fmt,
                                  source_width=mw, source_height=mh)
            ref = decoded.levels[0].thumbnail_image(out.width, height=out.height, size="force")
            sizes.append(len(out.data))
            scores.append(quality.score(quality.prepare(ref, max(out.width, out.height)),
                                        out.data))
        count = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - wall0 < args.seconds:
            (_name, decoded, mw, mh), width = jobs[count % len(jobs)]
            out = pipeline.render(decoded, RenderOptions(width=width, quality=q), fmt,
                                  source_width=mw, source_height=mh)
            count += 1
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"| {fmt} | {'' if effort is None else effort} | "
              f"{q or pipeline.DEFAULT_QUALITY[fmt]} | {count / cpu:.1f} | {count / wall:.1f} | "
              f"{statistics.mean(sizes):,.0f} | {statistics.mean(scores):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
