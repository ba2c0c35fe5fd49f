"""`api.Request` and `api.Response`: what the gateway's `api` handler sends to an API service.

The shapes are go-micro's (`Pair{key, values}` maps for headers, query and form fields), so an
API service written against micro's `api.proto` reads the same JSON. Example::

    from trimicro.gateway import api

    @service.endpoint("Say.Hello")
    async def hello(req: api.Request) -> api.Response:
        name = req.query("name") or "stranger"
        return api.Response.json({"message": f"Hello {name}"})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["Pair", "Request", "Response", "pairs"]


@attrs.frozen
class Pair:
    """One header, query or form field: its name and every value it was given."""

    key: str
    values: list[str] = attrs.field(factory=list)


def pairs(items: Iterable[tuple[str, str]]) -> dict[str, Pair]:
    """Group `(name, value)` items into `{name: Pair(name, [values...])}`, keeping order."""
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    return {name: Pair(name, values) for name, values in grouped.items()}


def _first(fields: Mapping[str, Pair], name: str, default: str | None) -> str | None:
    pair = fields.get(name)
    return pair.values[0] if pair is not None and pair.values else default


@attrs.frozen
class Request:
    """An HTTP request as the API service sees it.

    `header` keys are canonical (`Content-Type`); `get` holds the query parameters, `post` the
    fields of an `application/x-www-form-urlencoded` body (whose `body` is then empty); `body`
    is the raw body as text otherwise; `url` is the full URL the client asked for.
    """

    method: str = "GET"
    path: str = "/"
    header: dict[str, Pair] = attrs.field(factory=dict)
    get: dict[str, Pair] = attrs.field(factory=dict)
    post: dict[str, Pair] = attrs.field(factory=dict)
    body: str = ""
    url: str = ""

    def query(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        return _first(self.get, name, default)

    def form(self, name: str, default: str | None = None) -> str | None:
        """The first value of form field `name`."""
        return _first(self.post, name, default)

    def header_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (any case)."""
        wanted = name.lower()
        found = {k.lower(): v for k, v in self.header.items()}
        return _first(found, wanted, default)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@attrs.frozen
class Response:
    """What an API service answers: the HTTP status, headers and body text."""

    status_code: int = 200
    header: dict[str, Pair] = attrs.field(factory=dict)
    body: str = ""

    @classmethod
    def json(cls, data: Any, *, status_code: int = 200) -> Response:
        """A JSON response with its `Content-Type` set."""
        header = {"Content-Type": Pair("Content-Type", ["application/json"])}
        return cls(status_code, header, json.dumps(data, ensure_ascii=False))
