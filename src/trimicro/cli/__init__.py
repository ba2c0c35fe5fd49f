"""The `trimicro` command."""

from __future__ import annotations

import click

from .._config import ConfigError, check_environment
from ._api_cmd import api
from ._broker_cmds import publish, subscribe
from ._client_cmds import register_commands
from ._demo import demo
from ._network_cmds import network
from ._options import global_options
from ._output import EXIT_INPUT, Fail
from ._proxy_cmd import proxy
from ._run_cmd import run
from ._sidecar_cmd import sidecar
from ._web_cmd import web

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@global_options
def cli() -> None:
    """trimicro: microservices on trio's structured concurrency."""
    # Bad TRIMICRO_* values (plugins, address, proxy, namespace, token, TLS files) fail here,
    # naming the variable, whatever the command: all commands read the same environment.
    try:
        check_environment()
    except ConfigError as exc:
        raise Fail(str(exc), EXIT_INPUT) from None


register_commands(cli)
cli.add_command(run)
cli.add_command(demo)
cli.add_command(publish)
cli.add_command(subscribe)
cli.add_command(api)
cli.add_command(proxy)
cli.add_command(web)
cli.add_command(network)
cli.add_command(sidecar)


def main() -> None:
    cli(prog_name="trimicro")
