"""Global options, accepted before or after the subcommand (`trimicro --output json services`
and `trimicro services --output json` mean the same)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import click

__all__ = ["Globals", "global_options", "pass_globals"]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.define
class Globals:
    registry: str | None = None
    transport: str | None = None
    broker: str | None = None
    proxy: str | None = None
    output: str = "text"


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
        return ctx.invoke(fn, root.obj, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper  # type: ignore[return-value]
