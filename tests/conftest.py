from __future__ import annotations

import os

import hypothesis
import pytest

from tests._leaks import snapshot

hypothesis.settings.register_profile("ci", max_examples=200, deadline=None)
hypothesis.settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis.settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("TRIMICRO_FUZZ_INPUTS", "100000")),
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
_profile = os.environ.get("TRIMICRO_HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI") else "dev"
)
hypothesis.settings.load_profile(_profile)


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaves file descriptors, sockets or child processes behind."""
    before = snapshot()
    yield
    leaked = snapshot().leaked_since(before)
    # A process may still be exiting after being signalled: give reaping a moment.
    if any("child process" in p for p in leaked):
        import time

        time.sleep(0.5)
        leaked = snapshot().leaked_since(before)
    assert not leaked, "; ".join(leaked)
