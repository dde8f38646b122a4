"""The limits every source shares: how much is read at a time, and the answer when a file is
larger than allowed."""

from __future__ import annotations

from ecogram.errors import AppError

CHUNK = 1024 * 1024


def too_large(size: int, limit: int, code: str = "file_too_large", what: str = "file") -> AppError:
    return AppError(
        413,
        code,
        f"The {what} is larger than the limit of {limit / 1e6:.0f} MB.",
        {"size_at_least": size, "max_bytes": limit},
    )
