"""Developer sessions: tests, lint, typing, bench."""

from __future__ import annotations

from pathlib import Path

import nox
import nox.command

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def _install_servers(session: nox.Session) -> None:
    """Real servers the plugin tests use (nats-server, etcd), from Debian, when missing."""
    if Path("scripts/install-servers.sh").exists():
        session.run("bash", "scripts/install-servers.sh", external=True)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite (pytest exits non-zero when no test ran)."""
    _install_servers(session)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the import-layer contracts."""
    session.install("-e", ".", "ruff", "import-linter")
    session.run("ruff", "check", "src", "tests", "examples", "bench", "fuzz", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "src", "tests", "examples", "bench", "fuzz", "noxfile.py"
    )
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict on src/."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Every fuzz target for `--inputs N` inputs each (default 100,000; >= 1M per release)."""
    inputs = "100000"
    args = list(session.posargs)
    if "--inputs" in args:
        at = args.index("--inputs")
        inputs = args[at + 1]
        del args[at : at + 2]
    session.install("-e", ".[test]")
    env = {"TRIMICRO_HYPOTHESIS_PROFILE": "fuzz", "TRIMICRO_FUZZ_INPUTS": inputs}
    session.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/fuzz", *args, env=env
    )
    # Coverage-guided too, where atheris (libFuzzer) installs: same decoders, same rule.
    try:
        session.install("atheris")
    except nox.command.CommandFailed:
        session.log("atheris does not install here: the hypothesis targets ran, that is all")
        return
    artifacts = f"-artifact_prefix={session.create_tmp()}/"
    session.run("python", "-m", "fuzz.atheris_targets", "all", f"-runs={inputs}", artifacts)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Soak and endurance: large calls, concurrency, and --minutes at half rate (default 10)."""
    session.install("-e", ".")
    session.run("python", "-m", "bench.soak", *session.posargs)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """The fault suite: kills, drains under load, partitions (also part of `tests`)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/faults",
        "tests/e2e",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark report (bench/results/report.md + .png: every figure beside its floor,
    targets MET or MISSED), then the network simulation's scaling curve."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "bench.report", *session.posargs)
    session.run("python", "-m", "bench.network")
