"""`trimicro publish` and `trimicro subscribe`."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterable
from typing import Any

import click
import trio

from .._config import resolve_broker, resolve_registry, resolve_transport
from .._service import open_client
from ..broker import Broker, BrokerMessage, open_broker
from ..codec import CodecError, codec_for
from ..registry import open_registry
from ..session import load_transport
from ._client_cmds import _parse_metadata, _parse_request, _run
from ._options import Globals, global_options, pass_globals
from ._output import emit_json

__all__ = ["publish", "subscribe"]


@click.command()
@click.argument("topic")
@click.argument("message", required=False)
@click.option("--metadata", "-m", multiple=True, help="KEY=VALUE, repeatable.")
@global_options
@pass_globals
def publish(g: Globals, topic: str, message: str | None, metadata: tuple[str, ...]) -> None:
    """Publish a JSON MESSAGE (argument or stdin) to TOPIC."""
    body = _parse_request(message)
    md = _parse_metadata(metadata)

    async def main() -> None:
        async with open_client(
            registry=g.registry, transport=g.transport, broker=g.broker, proxy=g.proxy
        ) as c:
            await c.publish(topic, body, metadata=md)

    _run(main)
    if g.output == "json":
        emit_json({"topic": topic, "published": True}, "json")
    else:
        click.echo(f"published to {topic}", err=True)


@click.command()
@click.argument("topic")
@click.option("--queue", help="Join this queue group (each message goes to one member).")
@click.option("--count", type=int, default=0, help="Exit after this many messages (0: never).")
@global_options
@pass_globals
def subscribe(g: Globals, topic: str, queue: str | None, count: int) -> None:
    """Print messages published to TOPIC, one JSON per line, until interrupted."""

    async def main() -> None:
        transport = load_transport(resolve_transport(g.transport))
        broker_url = resolve_broker(g.broker)
        async with (
            open_registry(resolve_registry(g.registry)) as registry,
            open_broker(broker_url, registry=registry, transport=transport) as broker,
        ):
            await _print_messages(broker, topic, queue, count)

    _run(main)


async def _print_messages(broker: Broker, topic: str, queue: str | None, count: int) -> None:
    """Print until `count` messages or SIGINT/SIGTERM; then leave the subscription and print
    what was already queued, so a clean stop loses nothing that was acknowledged."""
    enough = trio.Event()
    printed = 0

    async def printer(subscription: AsyncIterable[BrokerMessage]) -> None:
        nonlocal printed
        async for message in subscription:
            emit_json(_decoded(message.body, message.content_type), "json")
            printed += 1
            if count and printed >= count:
                enough.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_set_on_signal, enough)
        async with trio.open_nursery() as printing:
            async with broker.subscribe(topic, queue=queue) as subscription:
                printing.start_soon(printer, subscription)
                click.echo(
                    f"subscribed to {topic}" + (f" in queue {queue}" if queue else ""), err=True
                )
                await enough.wait()
        nursery.cancel_scope.cancel()


async def _set_on_signal(event: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            event.set()
            return


def _decoded(body: bytes, content_type: str) -> Any:
    try:
        return codec_for(content_type).decode(body)
    except CodecError as exc:
        return {"undecodable": str(exc)}
