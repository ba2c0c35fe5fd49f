"""How commands print and exit: text or JSON, and the exit codes of DESIGN.md §4.

0 ok · 1 the remote side answered an error (its JSON on stderr) · 2 usage or input error (one
line, no traceback) · 3 could not reach what was asked for.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any, NoReturn

import click

__all__ = ["EXIT_INPUT", "EXIT_REMOTE", "EXIT_UNREACHABLE", "Fail", "dump_json", "emit_json"]

EXIT_REMOTE = 1
EXIT_INPUT = 2
EXIT_UNREACHABLE = 3


class Fail(click.ClickException):
    """A failure with its own exit code and a one-line message (or error JSON) on stderr."""

    def __init__(self, message: str, exit_code: int, *, error_json: dict[str, Any] | None = None):
        super().__init__(message)
        # click declares exit_code as a class variable; each failure carries its own.
        setattr(self, "exit_code", exit_code)  # noqa: B010
        self.error_json = error_json

    def show(self, file: Any = None) -> None:
        if self.error_json is not None:
            click.echo(dump_json(self.error_json), err=True)
        else:
            click.echo(f"trimicro: {self.format_message()}", err=True)


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def dump_json(value: Any, *, pretty: bool = False) -> str:
    return json.dumps(value, default=_default, indent=2 if pretty else None, ensure_ascii=False)


def emit_json(value: Any, output: str) -> None:
    """Print one JSON document: compact for `--output json`, indented for people."""
    click.echo(dump_json(value, pretty=output != "json"))
    sys.stdout.flush()


def fail(message: str, exit_code: int = EXIT_INPUT) -> NoReturn:
    raise Fail(message, exit_code)
