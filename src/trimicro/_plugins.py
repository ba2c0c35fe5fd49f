"""Plugin lookup by URL scheme through Python entry points.

Built-ins register exactly like third-party plugins do (see pyproject.toml), so a package that
declares an entry point in `trimicro.registries`, `trimicro.transports` or `trimicro.brokers`
adds a scheme without touching trimicro.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

__all__ = ["PluginError", "load_plugin", "plugin_schemes"]


class PluginError(ValueError):
    """No plugin for a URL's scheme, or a malformed URL."""


@cache
def _group(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def plugin_schemes(group: str) -> list[str]:
    """The schemes available in `group`, sorted."""
    return sorted(_group(group))


def load_plugin(group: str, url: str) -> Any:
    """The factory registered for `url`'s scheme in entry-point `group`."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise PluginError(f"{url!r} is not a URL: expected SCHEME://... ({_known(group)})")
    entry = _group(group).get(scheme)
    if entry is None:
        raise PluginError(f"unknown scheme {scheme!r} in {url!r} ({_known(group)})")
    return entry.load()


def _known(group: str) -> str:
    return "known: " + ", ".join(f"{s}://" for s in plugin_schemes(group))
