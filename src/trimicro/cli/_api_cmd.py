"""`trimicro api`: the HTTP API gateway, until SIGINT/SIGTERM (then it drains)."""

from __future__ import annotations

import logging
from typing import Any

import click
import trio

from .._config import ConfigError, resolve_namespace
from ..gateway import DEFAULT_ADDRESS, HANDLERS, Gateway, serve_gateway
from ..nursery import open_owned_nursery
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, EXIT_UNREACHABLE, fail
from ._signals import first_signal

__all__ = ["api"]


async def _serve(options: dict[str, Any]) -> None:
    async with open_owned_nursery() as nursery:  # a start-up failure surfaces unwrapped
        gateway: Gateway = await nursery.start(
            lambda task_status: serve_gateway(
                shutdown_trigger=first_signal, task_status=task_status, **options
            )
        )
        app = gateway.app
        click.echo(
            f"serving api gateway on {gateway.url} "
            f"(handler {app.handler}, namespace {app.backend.namespace})",
            err=True,
        )


@click.command()
@click.option("--address", default=DEFAULT_ADDRESS, show_default=True, help="Listen HOST:PORT.")
@click.option(
    "--handler",
    type=click.Choice(HANDLERS),
    default="rpc",
    show_default=True,
    help="How paths other than /rpc are served.",
)
@click.option(
    "--namespace",
    help="Prefix of the services paths map to (default TRIMICRO_NAMESPACE, else trimicro.api;"
    " trimicro.web for web; '' for none).",
)
@click.option(
    "--cors", "cors", multiple=True, metavar="ORIGIN", help="Allow this origin ('*': any)."
)
@global_options
@pass_globals
def api(
    g: Globals, address: str, handler: str, namespace: str | None, cors: tuple[str, ...]
) -> None:
    """Serve the HTTP API gateway: POST /rpc, and paths mapped to services."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        namespace = resolve_namespace(namespace)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    options: dict[str, Any] = {
        "address": address, "handler": handler, "namespace": namespace, "cors": cors,
        "registry": g.registry, "transport": g.transport, "proxy": g.proxy,
    }  # fmt: skip
    try:
        trio.run(_serve, options)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        fail(f"cannot serve the gateway on {address}: {exc}", EXIT_UNREACHABLE)
