"""The warm-path cost of delivery analytics: one ``Counts.served`` call per /img answer.

    PYTHONPATH=. .venv/bin/python bench/analytics_bench.py

In-process: 1,000 photos already counted (a dict of 1,000 rows), 1,000 answers per round,
best of 5 × 2,000 rounds; compared with counting off (``NoCounts``) and with the bare loop.
"""

import timeit

from ecogram.catalog.analytics import Counts, NoCounts

ROUNDS = 2000
IDS = list(range(1000))


def main() -> None:
    counting, off = Counts(), NoCounts()
    for image_id in IDS:
        counting.served(image_id, 1, "memory")

    def on_path() -> None:
        served = counting.served
        for image_id in IDS:
            served(image_id, 48_000, "memory")

    def off_path() -> None:
        served = off.served
        for image_id in IDS:
            served(image_id, 48_000, "memory")

    def bare() -> None:
        for _ in IDS:
            pass

    for name, run in (("Counts.served", on_path), ("NoCounts.served", off_path),
                      ("loop only", bare)):
        best = min(timeit.repeat(run, number=ROUNDS, repeat=5)) / ROUNDS / len(IDS) * 1e9
        print(f"{name}: {best:.0f} ns per answer")


if __name__ == "__main__":
    main()
