"""Metadata: the headers of a call or message, with case-insensitive keys."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["Metadata"]


class Metadata(Mapping[str, str]):
    """Read-only metadata with case-insensitive keys (as HTTP headers)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = {k.lower(): (k, v) for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Metadata({dict(self)!r})"
