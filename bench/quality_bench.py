"""Calibrated quality: the q each format needs to reach a SSIMULACRA2 target, per photo.

    PYTHONPATH=. .venv/bin/python bench/quality_bench.py [--target 80] [--width 512]

Photos: /work/shared/bench-images (or $BENCH_IMAGES) plus two synthetic ones drawn with pyvips
(a flat product shot on white, a noisy photo). Prints, per photo and format, the chosen q, its
score, the bytes at that q against the fixed default q, and the search's time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import pyvips

from ecogram.imaging import pipeline, quality

BOUNDS = {"webp": (50, 90), "avif": (35, 80), "jpeg": (55, 90)}


def flat_product(side: int = 1200) -> pyvips.Image:
    """A grey box with a darker label on pure white: what most catalogue shots look like."""
    white = pyvips.Image.black(side, side, bands=3) + 255
    box = pyvips.Image.black(side // 2, side // 2).new_from_image([120, 140, 170]).cast("uchar")
    label = pyvips.Image.black(side // 4, side // 8).new_from_image([230, 200, 60]).cast("uchar")
    box = box.insert(label, side // 8, side // 6)
    return white.cast("uchar").insert(box, side // 4, side // 4).copy(interpretation="srgb")


def noisy_photo(side: int = 1200) -> pyvips.Image:
    """Smooth gradients under heavy sensor-like noise: the hardest case for an encoder."""
    x = pyvips.Image.xyz(side, side)[0]
    base = (x / side * 200 + 20).bandjoin([x / side * 80 + 60, 255 - x / side * 200])
    noise = pyvips.Image.gaussnoise(side, side, sigma=28, seed=1).bandjoin(
        [pyvips.Image.gaussnoise(side, side, sigma=28, seed=seed) for seed in (2, 3)]) - 128
    return (base + noise).cast("uchar").copy(interpretation="srgb")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=float, default=80.0)
    parser.add_argument("--width", type=int, default=quality.WIDTH)
    args = parser.parse_args()
    folder = pathlib.Path(os.environ.get("BENCH_IMAGES", "/work/shared/bench-images"))
    photos: dict[str, pyvips.Image | bytes] = {
        p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))
    }
    photos["synthetic-flat-product"] = flat_product()
    photos["synthetic-noisy"] = noisy_photo()
    print(f"target {args.target}, width {args.width}")
    print("photo | format | q | score | bytes at q | bytes (score) at default q | encodes "
          "| seconds")
    for name, data in photos.items():
        reference = quality.prepare(data, args.width)
        for fmt, (floor, ceiling) in BOUNDS.items():
            started = time.perf_counter()
            found = quality.calibrate(reference, fmt, target=args.target, floor=floor,
                                      ceiling=ceiling)
            seconds = time.perf_counter() - started
            at_q = len(pipeline.encode_for_quality(reference, fmt, found.q))
            default_file = pipeline.encode_for_quality(
                reference, fmt, pipeline.DEFAULT_QUALITY[fmt])
            default = f"{len(default_file)} ({quality.score(reference, default_file):.1f})"
            print(f"{name} | {fmt} | {found.q} | {found.score} | {at_q} | {default} | "
                  f"{found.encodes} | {seconds:.2f}")


if __name__ == "__main__":
    main()
