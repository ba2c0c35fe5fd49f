"""The dashboard's static files, shipped in the package (`static/`), read once at start.

Only the files listed here are served: a path is a key in a table, never joined to a
directory, so there is nothing to traverse.
"""

from __future__ import annotations

from importlib import resources

import attrs

from ..gateway._http import Send, respond
from ..rpc import errors

__all__ = ["STATIC_FILES", "Static"]

#: Served name → content type.
STATIC_FILES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}


@attrs.frozen
class Static:
    files: dict[str, tuple[bytes, str]]

    @classmethod
    def load(cls) -> Static:
        folder = resources.files("trimicro.web") / "static"
        return cls({name: ((folder / name).read_bytes(), kind)
                    for name, kind in STATIC_FILES.items()})  # fmt: skip

    async def serve(self, name: str, send: Send) -> None:
        found = self.files.get(name)
        if found is None:
            raise errors.not_found(f"no static file {name}", id="trimicro.web")
        body, kind = found
        await respond(send, 200, body, [("content-type", kind)])
