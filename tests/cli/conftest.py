"""Helpers for CLI tests: the real `trimicro` command as a subprocess, on a registry of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**variables: str) -> dict[str, str]:
    """The environment with no `TRIMICRO_*` of the caller's, an in-memory registry (no
    multicast), and `variables` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIMICRO_")}
    env["TRIMICRO_REGISTRY"] = "memory://cli-tests"
    env["PYTHONPATH"] = str(ROOT)
    env.update(variables)
    return env


def cli(
    *args: str, env: Mapping[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `trimicro ARGS...`; returns the CompletedProcess (text, both streams captured)."""
    return subprocess.run(
        [sys.executable, "-m", "trimicro", *args],
        env=dict(env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
