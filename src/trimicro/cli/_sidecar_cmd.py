"""`trimicro sidecar`: a non-Python HTTP app's sidecar, until SIGINT/SIGTERM (then it
deregisters the app and drains)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import click
import trio

from .._config import ConfigError
from ..nursery import open_owned_nursery
from ..sidecar import (
    DEFAULT_ADDRESS,
    DEFAULT_INTERVAL,
    Sidecar,
    app_url,
    parse_endpoint,
    serve_sidecar,
)
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, EXIT_UNREACHABLE, fail
from ._signals import first_signal
from ._web_cmd import check_address

__all__ = ["sidecar"]


async def _serve(options: dict[str, Any]) -> None:
    async with open_owned_nursery() as nursery:  # a start-up failure surfaces unwrapped
        sidecar: Sidecar = await nursery.start(
            lambda task_status: serve_sidecar(
                shutdown_trigger=first_signal, task_status=task_status, **options
            )
        )
        base_url, _ = app_url(options["server_address"])
        click.echo(
            f"serving sidecar on {sidecar.url} for {sidecar.app.name} (app {base_url})", err=True
        )


def _healthcheck(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--healthcheck {url!r} is not an http:// or https:// URL", EXIT_INPUT)
    return url


def _options(
    name: str, server_address: str, healthcheck: str | None, endpoints: tuple[str, ...]
) -> dict[str, Any]:
    if not name or any(c.isspace() for c in name):
        fail(f"--server-name {name!r} must be a name without spaces", EXIT_INPUT)
    try:
        app_url(server_address)
        parsed = [parse_endpoint(spec) for spec in endpoints]
    except (ConfigError, ValueError) as exc:
        flag = "--server-address" if isinstance(exc, ConfigError) else "--endpoint"
        fail(f"{flag}: {exc}", EXIT_INPUT)
    return {
        "name": name, "server_address": server_address, "endpoints": parsed,
        "healthcheck": _healthcheck(healthcheck),
    }  # fmt: skip


@click.command()
@click.option("--server-name", required=True, metavar="NAME", help="The app's service name.")
@click.option(
    "--server-address", required=True, metavar="HOST:PORT", help="Where the app serves HTTP."
)
@click.option("--healthcheck", metavar="URL", help="The app's health check (2xx: healthy).")
@click.option(
    "--healthcheck-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_INTERVAL,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between health checks.",
)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="NAME[=PATH]",
    help="An endpoint the app answers: Say.Hello is POST /say/hello (or PATH). Repeatable.",
)
@click.option("--server-version", default="latest", show_default=True, help="The app's version.")
@click.option("--address", default=DEFAULT_ADDRESS, show_default=True, help="HTTP HOST:PORT.")
@click.option(
    "--rpc-address",
    metavar="HOST:PORT",
    help="Where calls to the app arrive (default: TRIMICRO_ADDRESS, else any loopback port).",
)
@global_options
@pass_globals
def sidecar(
    g: Globals,
    server_name: str,
    server_address: str,
    healthcheck: str | None,
    healthcheck_interval: float,
    endpoints: tuple[str, ...],
    server_version: str,
    address: str,
    rpc_address: str | None,
) -> None:
    """Register a non-Python HTTP app while it is healthy and proxy calls to it; serve
    /registry, /rpc, /broker and /health for it over HTTP."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per health check
    options = _options(server_name, server_address, healthcheck, endpoints)
    options.update(
        address=check_address(address),
        rpc_address=None if rpc_address is None else check_address(rpc_address, "--rpc-address"),
        version=server_version, health_interval=healthcheck_interval,
        registry=g.registry, transport=g.transport, broker=g.broker, proxy=g.proxy,
    )  # fmt: skip
    try:
        trio.run(_serve, options)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        fail(f"cannot serve the sidecar on {address}: {exc}", EXIT_UNREACHABLE)
