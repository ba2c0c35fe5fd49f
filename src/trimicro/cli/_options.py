"""Global options, accepted before or after the subcommand (`trimicro --output json services`
and `trimicro services --output json` mean the same)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import click

from .._config import (
    ConfigError,
    resolve_broker,
    resolve_proxy,
    resolve_registry,
    resolve_transport,
)
from ._output import EXIT_INPUT, Fail

__all__ = ["Globals", "global_options", "pass_globals"]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.define
class Globals:
    registry: str | None = None
    transport: str | None = None
    broker: str | None = None
    proxy: str | None = None
    output: str = "text"

    def check(self) -> None:
        """Fail (exit 2, one line) on a bad --registry/--transport/--broker/--proxy, whether
        or not the command uses it: the environment is checked the same way (cli/__init__)."""
        try:
            for value, resolve in [
                (self.registry, resolve_registry),
                (self.transport, resolve_transport),
                (self.broker, resolve_broker),
                (self.proxy, resolve_proxy),
            ]:
                if value is not None:
                    resolve(value)
        except ConfigError as exc:
            raise Fail(str(exc), EXIT_INPUT) from None


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        root = ctx.find_root()
        root.ensure_object(Globals)
        setattr(root.obj, name, value)

    return callback


def global_options(fn: F) -> F:
    """Add --registry/--transport/--broker/--proxy/--output to a command or group."""
    options = [
        click.option("--registry", help="Registry URL (mdns://, memory://NAME, etcd://...)."),
        click.option("--transport", help="Transport URL (tcp://, quic://, memory://NAME)."),
        click.option("--broker", help="Broker URL."),
        click.option("--proxy", help="Send calls through this proxy or network node."),
        click.option("--output", type=click.Choice(["text", "json"]), help="Output format."),
    ]
    for option in options:
        fn = option(fn)
    for param in fn.__click_params__:  # type: ignore[attr-defined]
        if param.name in attrs.fields_dict(Globals):
            param.expose_value = False
            param.callback = _store(param.name)
            param.is_eager = True
    return fn


def pass_globals(fn: F) -> F:
    """Pass the merged global options as the first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        root = ctx.find_root()
        root.ensure_object(Globals)
        root.obj.check()
        return ctx.invoke(fn, root.obj, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper  # type: ignore[return-value]
