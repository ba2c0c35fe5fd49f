"""`trimicro demo` runs its tour end to end and exits 0."""

from __future__ import annotations

import re

import pytest

from .conftest import cli

pytestmark = pytest.mark.e2e


def test_demo_tour(site_env: dict[str, str]) -> None:
    result = cli("demo", env=site_env, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "reply: 'Hello Ann'" in out
    assert "'code': 400" in out
    assert "replies: [0, 1, 2, 3, 4]" in out
    assert "caller gave up: True" in out and "was cancelled after" in out
    assert "logger: 20" in out
    assert "failed calls: 0 of 200" in out
    # A real process killed with SIGKILL mid-traffic: no call fails, both nodes answered.
    assert "failed calls: 0 of 200 (the kill came at 100)" in out
    assert "'the node that gets killed':" in out and "'the survivor':" in out
    assert "POST /greeter/say/hello → 200 {'msg': 'Hello Bo'}" in out  # the gateway
    assert "an error keeps its status: 400" in out
    assert re.search(r"the web dashboard: http://127\.0\.0\.1:\d+", out)
    # Across the network: a route through node-b, a reply from site b, a deadline that
    # cancelled the handler over there.
    assert "node-a learned weather via node-b" in out
    assert "reply: {'site': 'b', 'forecast': 'sunny'}" in out
    assert re.search(r"the handler in site b was cancelled after 0\.[45]\d s", out)
    assert "every service deregistered and drained" in out
