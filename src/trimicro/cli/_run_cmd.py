"""`trimicro run MODULE:ATTR`: serve a `Service` until SIGINT/SIGTERM, then drain."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click
import trio

from .._config import ConfigError
from .._service import RunningService, Service, serve_until_signal
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, fail

__all__ = ["run"]


def _load_service(target: str) -> Service:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        fail(f"{target!r}: expected MODULE:ATTR, e.g. examples.greeter:service", EXIT_INPUT)
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        fail(f"cannot import {module_name!r}: {exc}", EXIT_INPUT)
    service = getattr(module, attr, None)
    if not isinstance(service, Service):
        found = "nothing" if service is None else type(service).__name__
        fail(f"{target}: expected a trimicro.Service, found {found}", EXIT_INPUT)
    return service


@click.command()
@click.argument("target", metavar="MODULE:ATTR")
@click.option("--address", help="Listen address HOST:PORT (default TRIMICRO_ADDRESS or any port).")
@click.option(
    "--register-ttl", type=click.FloatRange(min=0, min_open=True), help="Seconds (default 60)."
)
@click.option(
    "--register-interval", type=click.FloatRange(min=0, min_open=True), help="Seconds (default 30)."
)
@global_options
@pass_globals
def run(
    g: Globals,
    target: str,
    address: str | None,
    register_ttl: float | None,
    register_interval: float | None,
) -> None:
    """Serve the Service found at MODULE:ATTR until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service = _load_service(target)
    service.registry = g.registry or service.registry
    service.transport = g.transport or service.transport
    service.address = address or service.address
    service.broker = g.broker or service.broker
    service.proxy = g.proxy or service.proxy
    service.register_ttl = register_ttl or service.register_ttl
    service.register_interval = register_interval or service.register_interval
    if not 0 < service.register_interval < service.register_ttl:
        fail("--register-interval must be shorter than --register-ttl", EXIT_INPUT)

    def ready(running: RunningService) -> None:
        click.echo(f"serving {service.name} on {running.address} ({running.node.id})", err=True)

    try:
        trio.run(lambda: serve_until_signal(service, on_ready=ready))
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except OSError as exc:
        fail(f"cannot serve {service.name}: {exc}", 3)
