"""The leak guard: every test ends with no new file descriptors, sockets or child processes.

Used by every test through the autouse fixture in tests/conftest.py. Tasks cannot leak past
a test: pytest-trio runs each test in its own `trio.run`, which only returns once every task
has finished — structured concurrency guarantees that part.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

__all__ = ["Snapshot", "snapshot"]

_PROC = Path("/proc/self")


@attrs.frozen
class Snapshot:
    fds: dict[int, str]
    children: frozenset[int]

    def leaked_since(self, before: Snapshot) -> list[str]:
        problems = [
            f"fd {fd} ({target}) left open"
            for fd, target in sorted(self.fds.items())
            if fd not in before.fds or before.fds[fd] != target
        ]
        problems += [
            f"child process {pid} left running" for pid in sorted(self.children - before.children)
        ]
        return problems


def _fds() -> dict[int, str]:
    found = {}
    for entry in (_PROC / "fd").iterdir():
        try:
            found[int(entry.name)] = os.readlink(entry)
        except OSError:
            continue  # the fd used to list the directory itself, already closed
    return found


def _children() -> frozenset[int]:
    pids: set[int] = set()
    for task in (_PROC / "task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            continue
    return frozenset(pids)


def snapshot() -> Snapshot:
    return Snapshot(_fds(), _children())
