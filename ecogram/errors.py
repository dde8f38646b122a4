"""One error type with a public message, and the JSON shape every client sees.

Handlers and use cases raise ``AppError``; the middleware in ``ecogram.middleware`` renders it as
``{"error": {"code", "message", "details"}}`` for API paths and as an HTML page for browser paths.
Messages are written for the user; exception text is never sent to a client.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error whose status, code and message are safe to show to the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"AppError({self.status}, {self.code!r}, {self.message!r})"


def bad_request(code: str, message: str, **details: Any) -> AppError:
    return AppError(400, code, message, details)


def not_found(message: str = "Not found.", code: str = "not_found") -> AppError:
    return AppError(404, code, message)


def conflict(code: str, message: str, **details: Any) -> AppError:
    return AppError(409, code, message, details)


def invalid(message: str, **details: Any) -> AppError:
    """422: the request was understood but a field is not acceptable."""
    return AppError(422, "invalid_fields", message, details)
