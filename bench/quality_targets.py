"""Which ECOGRAM_QUALITY_TARGET: bytes and scores of the calibrated output at several targets,
against libvips at q80, on quality_compare.py's 24 photos — without a server.

    PYTHONPATH=. .venv/bin/python bench/quality_targets.py [--targets 65,70,72,75]
        [--bounds webp:50-90,avif:35-80] [--processes 2] [--json rows.json]

For each photo (the four bench photos and the 20 synthetic ones of quality_compare.py) the
service's master is made (2048 px, JPEG q92) and the calibration run exactly as at approval
(``quality.views`` at 400 and 800 against the original, ``quality.calibrate_all`` with the
default bounds: a q per width) for each target; the output at 400 and 800 is that render at
its width's q, scored against the original at its size, beside ``pyvips.Image.thumbnail`` +
Q=80 (libvips' defaults: AVIF effort 4), scored the same way. Prints, per target and format:
the ratio of median bytes, the median per-image ratio and how many outputs score at or above
min(libvips q80's score, 70) — the issue's line — over the 48 outputs (24 photos x 2 widths).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyvips
import quality_bench
import quality_compare

from ecogram.imaging import quality
from ecogram.settings import Settings

WIDTHS = (400, 800)
FORMATS = ("webp", "avif")
BOUNDS = Settings.from_env({}).quality_bounds  # --bounds replaces them

_plain_score = quality.score
_scores: dict[tuple[int, bytes], float] = {}


def _memo_score(reference: pyvips.Image, candidate: bytes | pyvips.Image) -> float:
    """The same score, computed once per (reference, file): the targets share encodes."""
    if not isinstance(candidate, bytes):
        return _plain_score(reference, candidate)
    key = (id(reference), candidate)
    if key not in _scores:
        _scores[key] = _plain_score(reference, candidate)
    return _scores[key]


def one_photo(job: tuple[str, str, tuple[float, ...], dict[str, tuple[int, int]],
                         tuple[str, ...]]) -> list[dict[str, Any]]:
    name, path, targets, bounds, formats = job
    quality.score = _memo_score  # this process only
    _scores.clear()
    data = Path(path).read_bytes()
    sizes = quality_bench.service_views(data, WIDTHS)
    rows = []
    for fmt in formats:
        floor, ceiling = bounds[fmt]
        reference = {}
        for view in sizes:
            ref = quality_compare.libvips_q80(Path(path), view.width, fmt)
            reference[view.width] = {"bytes": len(ref),
                                     "score": round(_plain_score(view.reference, ref), 2)}
        for target in targets:
            found = quality.calibrate_all(sizes, [fmt], target=target,
                                          bounds={fmt: (floor, ceiling)})
            for view, result in zip(sizes, found, strict=True):
                out = view.encode(fmt, result.q)
                rows.append({"photo": name, "fmt": fmt, "width": view.width, "target": target,
                             "q": result.q, "bytes": len(out),
                             "score": round(quality.score(view.reference, out), 2),
                             "libvips_q80": reference[view.width]})
    return rows


def summary(rows: list[dict[str, Any]], targets: tuple[float, ...]) -> str:
    lines = ["| target | format | median bytes / libvips q80 | ratio of medians | median per-image "
             "ratio | scores >= min(ref, 70) | median score (ecogram / ref) |",
             "|" + " --- |" * 7]
    for target in targets:
        for fmt in (*sorted({r["fmt"] for r in rows}), "all"):
            group = [r for r in rows if r["target"] == target and fmt in (r["fmt"], "all")]
            eco = statistics.median(r["bytes"] for r in group)
            ref = statistics.median(r["libvips_q80"]["bytes"] for r in group)
            per = statistics.median(r["bytes"] / r["libvips_q80"]["bytes"] for r in group)
            below = [f"{r['photo']} {r['fmt']} {r['width']} ({r['score']} < "
                     f"{min(r['libvips_q80']['score'], 70)})" for r in group
                     if r["score"] < min(r["libvips_q80"]["score"], 70)]
            lines.append(
                f"| {target:g} | {fmt} | {eco:,.0f} / {ref:,.0f} | {eco / ref:.2f} | {per:.2f} | "
                f"{len(group) - len(below)}/{len(group)}"
                + (f" (below: {'; '.join(below)})" if below else "")
                + f" | {statistics.median(r['score'] for r in group):.1f} / "
                f"{statistics.median(r['libvips_q80']['score'] for r in group):.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default="65,70,72,75")
    parser.add_argument("--count", type=int, default=20, help="synthetic photos (default 20)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--bounds", help="as ECOGRAM_QUALITY_BOUNDS (default: its default)")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    targets = tuple(float(t) for t in args.targets.split(","))
    bounds = (Settings.from_env({"ECOGRAM_QUALITY_BOUNDS": args.bounds}).quality_bounds
              if args.bounds else BOUNDS)
    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix="quality-targets-"))
    photos = quality_compare.bench_photos() + quality_compare.synthetic_photos(folder,
                                                                               args.count)
    formats = tuple(args.formats.split(","))
    jobs = [(p.name, str(p), targets, bounds, formats) for p in photos]
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        rows = [row for found in pool.imap(one_photo, jobs) for row in found]
    print(f"{len(photos)} photos, targets {targets}, bounds {bounds}, nproc {os.cpu_count()}, "
          f"load {os.getloadavg()}, {time.time() - started:.0f} s\n")
    print(summary(rows, targets))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
