"""Errors a remote side answers with, HTTP-style as in go-micro.

A handler raising one of these sends it as is; any other exception becomes a 500 whose detail
does not leak internals. Callers receive an `Error`. Trio's own `TooSlowError` and `Cancelled`
stay trio's: a caller whose deadline passes sees its own scope's exception, not an `Error`.

Example::

    from trimicro import errors

    raise errors.bad_request("name must not be empty")
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import attrs

__all__ = [
    "Error",
    "bad_request",
    "conflict",
    "forbidden",
    "internal_server_error",
    "method_not_allowed",
    "not_found",
    "timeout",
    "too_many_requests",
    "unauthorized",
    "unavailable",
]


@attrs.define(eq=True, hash=False, str=False)
class Error(Exception):
    """An error answered by a remote side: `id` (who), `code` (HTTP status), `detail`, `status`."""

    id: str
    code: int
    detail: str
    status: str

    def __str__(self) -> str:
        return f"{self.code} {self.status} from {self.id or '?'}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """The error JSON: `{"id", "code", "detail", "status"}`."""
        return {"id": self.id, "code": self.code, "detail": self.detail, "status": self.status}

    @classmethod
    def from_dict(cls, data: Any) -> Error:
        """Rebuild an error from its JSON form; tolerant of missing fields."""
        if not isinstance(data, dict):
            return internal_server_error(f"malformed error: {data!r}"[:200], id="")
        code = data.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else 500
        return cls(
            id=str(data.get("id") or ""),
            code=code,
            detail=str(data.get("detail") or ""),
            status=str(data.get("status") or _reason(code)),
        )


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


def _current_service_name() -> str:
    # Late import: the call context lives beside the server, but errors are importable alone.
    from ._context import current_service_name

    return current_service_name()


def _make(code: int, detail: str, id: str | None) -> Error:
    return Error(
        id=id if id is not None else _current_service_name(),
        code=code,
        detail=detail,
        status=_reason(code),
    )


def bad_request(detail: str, *, id: str | None = None) -> Error:
    """400: the request is malformed."""
    return _make(400, detail, id)


def unauthorized(detail: str, *, id: str | None = None) -> Error:
    """401: the caller is not authenticated."""
    return _make(401, detail, id)


def forbidden(detail: str, *, id: str | None = None) -> Error:
    """403: the caller may not do this."""
    return _make(403, detail, id)


def not_found(detail: str, *, id: str | None = None) -> Error:
    """404: no such service, endpoint or resource."""
    return _make(404, detail, id)


def method_not_allowed(detail: str, *, id: str | None = None) -> Error:
    """405: the endpoint exists but not in this form (e.g. unary vs stream)."""
    return _make(405, detail, id)


def timeout(detail: str, *, id: str | None = None) -> Error:
    """408: the budget ran out."""
    return _make(408, detail, id)


def conflict(detail: str, *, id: str | None = None) -> Error:
    """409: the request conflicts with the resource's state."""
    return _make(409, detail, id)


def too_many_requests(detail: str, *, id: str | None = None) -> Error:
    """429: over a rate limit (nothing ran)."""
    return _make(429, detail, id)


def internal_server_error(detail: str, *, id: str | None = None) -> Error:
    """500: the handler failed."""
    return _make(500, detail, id)


def unavailable(detail: str, *, id: str | None = None) -> Error:
    """503: no node could take the request (nothing ran: safe to retry)."""
    return _make(503, detail, id)
