"""WebP encoder settings and per-width quality, on the quality benchmark's 24 photos (issue 15).

An exploration for the next step of calibrated quality, not the product's numbers: for each
photo at 400 and 800 wide, a plain libvips thumbnail of the original is the reference; for
each encoder setting the lowest q (bisection 30–95) whose WebP still scores SSIMULACRA2 70
against that reference is found *at that width alone*, and its bytes are compared with
libvips' WebP Q80 of the same thumbnail. What it leaves out, on purpose: the product's one q per
photo and format for every width (the highest any width needs), and its render from the
2048-px master. Run (about 9 minutes on one core):

    PYTHONPATH=. .venv/bin/python bench/webp_settings.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_compare

from ecogram.imaging import quality

TARGET = 70
SETTINGS = {"effort 4": {"effort": 4}, "effort 4, smart subsample": {"effort": 4,
                                                                     "smart_subsample": True},
            "effort 6": {"effort": 6}, "effort 6, smart subsample": {"effort": 6,
                                                                     "smart_subsample": True}}


def lowest(reference: pyvips.Image, options: dict) -> int:
    """Bytes at the lowest q reaching TARGET (q 95's when none does)."""
    low, high, found = 30, 95, None
    while low <= high:
        q = (low + high) // 2
        data = reference.webpsave_buffer(Q=q, keep="none", **options)
        if quality.score(reference, data) >= TARGET:
            found, high = len(data), q - 1
        else:
            low = q + 1
    return found or len(reference.webpsave_buffer(Q=95, keep="none", **options))


def main() -> None:
    photos = quality_compare.bench_photos() + quality_compare.synthetic_photos(
        Path(tempfile.mkdtemp()), 20)
    found: dict[str, list[int]] = {name: [] for name in SETTINGS}
    q80: list[int] = []
    for photo in photos:
        for width in (400, 800):
            reference = pyvips.Image.thumbnail(str(photo), width).colourspace("srgb")
            reference = reference.copy_memory()
            q80.append(len(reference.webpsave_buffer(Q=80, keep="none")))
            for name, options in SETTINGS.items():
                found[name].append(lowest(reference, options))
        print(photo.name, {name: sizes[-2:] for name, sizes in found.items()}, q80[-2:],
              flush=True)
    for name, sizes in found.items():
        ratios = [ours / theirs for ours, theirs in zip(sizes, q80, strict=True)]
        print(f"{name}: ratio of medians {statistics.median(sizes) / statistics.median(q80):.3f},"
              f" median per image {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
