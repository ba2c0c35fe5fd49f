"""`trimicro proxy`: an RPC proxy that serves any service name by forwarding it."""

from __future__ import annotations

import logging

import click
import trio

from .._config import ConfigError
from .._service import RunningService, Service, serve_until_signal
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, fail

__all__ = ["DEFAULT_PROXY_ADDRESS", "PROXY_SERVICE", "proxy"]

PROXY_SERVICE = "trimicro.proxy"
DEFAULT_PROXY_ADDRESS = "127.0.0.1:8083"


@click.command()
@click.option(
    "--address", default=DEFAULT_PROXY_ADDRESS, show_default=True, help="Listen address HOST:PORT."
)
@click.option("--name", default=PROXY_SERVICE, show_default=True, help="Registry name to serve as.")
@global_options
@pass_globals
def proxy(g: Globals, address: str, name: str) -> None:
    """Serve every service name: calls to this address (or to the service NAME, as
    TRIMICRO_PROXY=NAME does) are forwarded to the service's nodes found in the registry,
    deadline and cancellation included."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        service = Service(
            name, address=address, registry=g.registry, transport=g.transport, broker=g.broker
        )
    except ValueError as exc:
        fail(f"--name: {exc}", EXIT_INPUT)
    service.forward()

    def ready(running: RunningService) -> None:
        click.echo(f"serving {name} on {running.address} ({running.node.id})", err=True)

    try:
        trio.run(lambda: serve_until_signal(service, on_ready=ready))
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        fail(f"cannot serve the proxy on {address}: {exc}", 3)
