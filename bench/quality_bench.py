"""Calibrated quality: the q each format needs to reach a SSIMULACRA2 target, per photo, at each
width, as the service finds it at approval (ecogram.imaging.quality, VERSION 3).

    PYTHONPATH=. .venv/bin/python bench/quality_bench.py [--target 70] [--widths 400,800]
        [--synthetic 5]

Photos: /work/shared/bench-images (or $BENCH_IMAGES) plus two drawn here with pyvips (a flat
product shot on white, a noisy photo) and, with ``--synthetic N``, the first N synthetic
product photos of quality_compare.py. Each is made into the service's master (2048 px, JPEG
q92, ``pipeline.make_master``), decoded, and calibrated on the renders at ``--widths`` against
the original at their size, with the default bounds. Prints per photo and format the q and score
at each width, the encodes each width's search took (and took without the previous width's q
as its hint), the search's wall and CPU seconds; then the seconds per photo (all formats).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import pyvips

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from ecogram.imaging import pipeline, quality
from ecogram.imaging.options import RenderOptions
from ecogram.settings import Settings

BOUNDS = Settings.from_env({}).quality_bounds
MASTER_SIDE = 2048


def flat_product(side: int = 1200) -> bytes:
    """A grey box with a darker label on pure white: what most catalogue shots look like."""
    white = pyvips.Image.black(side, side, bands=3) + 255
    box = pyvips.Image.black(side // 2, side // 2).new_from_image([120, 140, 170]).cast("uchar")
    label = pyvips.Image.black(side // 4, side // 8).new_from_image([230, 200, 60]).cast("uchar")
    box = box.insert(label, side // 8, side // 6)
    image = white.cast("uchar").insert(box, side // 4, side // 4).copy(interpretation="srgb")
    return image.pngsave_buffer()


def noisy_photo(side: int = 1200) -> bytes:
    """Smooth gradients under heavy sensor-like noise: the hardest case for an encoder."""
    x = pyvips.Image.xyz(side, side)[0]
    base = (x / side * 200 + 20).bandjoin([x / side * 80 + 60, 255 - x / side * 200])
    noise = pyvips.Image.gaussnoise(side, side, sigma=28, seed=1).bandjoin(
        [pyvips.Image.gaussnoise(side, side, sigma=28, seed=seed) for seed in (2, 3)]) - 128
    return (base + noise).cast("uchar").copy(interpretation="srgb").pngsave_buffer()


def service_views(data: bytes, widths: tuple[int, ...]) -> list[quality.View]:
    """The views delivery builds at approval: renders from the decoded master, planned on the
    original's upright size, against the original."""
    header = pyvips.Image.new_from_buffer(data, "")
    size = (header.width, header.height)
    master = pipeline.decode_master(pipeline.make_master(data, MASTER_SIDE).data)

    def render(opts: RenderOptions, fmt: str) -> bytes:
        return pipeline.render(master, opts, fmt, source_width=master.width,
                               source_height=master.height, plan_size=size).data

    return quality.views(data, render, size=size, widths=widths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=float, default=Settings.from_env({}).quality_target)
    parser.add_argument("--widths", default="400,800")
    parser.add_argument("--synthetic", type=int, default=0)
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    folder = pathlib.Path(os.environ.get("BENCH_IMAGES", "/work/shared/bench-images"))
    photos: dict[str, bytes] = {p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))}
    photos["synthetic-flat-product"] = flat_product()
    photos["synthetic-noisy"] = noisy_photo()
    if args.synthetic:
        import quality_compare

        drawn = pathlib.Path(tempfile.mkdtemp(prefix="quality-bench-"))
        for path in quality_compare.synthetic_photos(drawn, args.synthetic):
            photos[path.name] = path.read_bytes()
    print(f"target {args.target}, widths {widths}, bounds {BOUNDS}, load {os.getloadavg()}")
    print("photo | format | q per width | score per width | encodes per width (without the "
          "hint) | wall s | cpu s")
    per_photo = []
    for name, data in photos.items():
        wall, cpu = time.perf_counter(), time.process_time()
        sizes = service_views(data, widths)  # the master and the references: part of the cost
        for fmt, (floor, ceiling) in BOUNDS.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            found = quality.calibrate_all(sizes, [fmt], target=args.target, bounds=BOUNDS)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            # each width searched from scratch, to show what the hint saves (not timed)
            unhinted = [quality.calibrate(view, fmt, target=args.target, floor=floor,
                                          ceiling=ceiling) for view in sizes]
            print(f"{name} | {fmt} | {'/'.join(str(c.q) for c in found)} | "
                  f"{'/'.join(str(c.score) for c in found)} | "
                  f"{'/'.join(str(c.encodes) for c in found)} "
                  f"({'/'.join(str(c.encodes) for c in unhinted)}) | "
                  f"{seconds:.2f} | {cpu_seconds:.2f}", flush=True)
            wall += time.perf_counter() - started - seconds  # not the searches without hint
            cpu += time.process_time() - cpu_started - cpu_seconds
        per_photo.append((name, time.perf_counter() - wall, time.process_time() - cpu))
    print("\nphoto | seconds per photo, all formats (wall / cpu)")
    for name, wall_s, cpu_s in per_photo:
        print(f"{name} | {wall_s:.2f} / {cpu_s:.2f}")


if __name__ == "__main__":
    main()
