"""`trimicro web`: the web dashboard, until SIGINT/SIGTERM (then it drains)."""

from __future__ import annotations

import logging
from typing import Any

import click
import trio

from .._config import ConfigError, check_host
from ..nursery import open_owned_nursery
from ..web import DEFAULT_ADDRESS, Dashboard, serve_dashboard
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, EXIT_UNREACHABLE, fail
from ._signals import first_signal

__all__ = ["web"]


def check_address(address: str, flag: str = "--address") -> str:
    """`HOST:PORT` (`[v6]:PORT` for IPv6); a one-line error naming the option otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or not check_host(host):
        fail(f"{flag} {address!r} is not HOST:PORT", EXIT_INPUT)
    return address


async def _serve(options: dict[str, Any]) -> None:
    async with open_owned_nursery() as nursery:  # a start-up failure surfaces unwrapped
        dashboard: Dashboard = await nursery.start(
            lambda task_status: serve_dashboard(
                shutdown_trigger=first_signal, task_status=task_status, **options
            )
        )
        click.echo(f"serving web dashboard on {dashboard.url}", err=True)


@click.command()
@click.option("--address", default=DEFAULT_ADDRESS, show_default=True, help="Listen HOST:PORT.")
@click.option(
    "--network",
    "network_node",
    metavar="ADDRESS",
    help="A network node's RPC address: adds its nodes, routes and graph at /network.",
)
@global_options
@pass_globals
def web(g: Globals, address: str, network_node: str | None) -> None:
    """Serve the web dashboard: services, their nodes and schemas, a call form, live."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options: dict[str, Any] = {
        "address": check_address(address), "registry": g.registry, "transport": g.transport,
        "proxy": g.proxy,
        "network_node": None if network_node is None else check_address(network_node, "--network"),
    }  # fmt: skip
    try:
        trio.run(_serve, options)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        fail(f"cannot serve the web dashboard on {address}: {exc}", EXIT_UNREACHABLE)
