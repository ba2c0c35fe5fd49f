"""User mistakes get one line and the right exit code, never a traceback."""

from __future__ import annotations

import pytest

from .conftest import cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "env_extra", "code", "needle"),
    [
        (["call", "greeter", "Say.Hello", "{not json"], {}, 2, "request is not valid JSON"),
        (["call", "greeter", "Say.Hello", "{}", "-m", "novalue"], {}, 2, "expected KEY=VALUE"),
        (["services"], {"TRIMICRO_REGISTRY": "bogus://x"}, 2, "TRIMICRO_REGISTRY"),
        (["services"], {"TRIMICRO_TRANSPORT": "carrier-pigeon"}, 2, "TRIMICRO_TRANSPORT"),
        (["demo"], {"TRIMICRO_BROKER": "bogus://"}, 2, "TRIMICRO_BROKER"),
        (["run", "no_such_module:service"], {}, 2, "cannot import 'no_such_module'"),
        (["run", "examples.greeter:nothing"], {}, 2, "expected a trimicro.Service"),
        (["run", "examples.greeter"], {}, 2, "expected MODULE:ATTR"),
        (["call", "nobody", "X.Y", "{}"], {}, 3, "nobody"),
        (["service", "nobody"], {}, 3, "not found"),
    ],
)
def test_user_mistake(args, env_extra, code, needle, site_env) -> None:
    result = cli(*args, env={**site_env, **env_extra})
    assert result.returncode == code, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
