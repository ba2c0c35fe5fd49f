"""Commands that ask the registry or call services: services, service, call, stream, health."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click
import trio

from .. import errors
from .._config import ConfigError, check_host
from .._service import open_client
from ..codec import unstructure
from ..registry import RegistryError, ServiceRecord, open_registry
from ..rpc import Client, Stream
from ._options import Globals, global_options, pass_globals
from ._output import EXIT_INPUT, EXIT_REMOTE, EXIT_UNREACHABLE, Fail, emit_json, fail

__all__ = ["register_commands"]

CLIENT_ID = "trimicro.client"


def _run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run `fn` under trio, mapping failures to exit codes (no tracebacks for users)."""
    try:
        return trio.run(fn)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)
    except errors.Error as exc:
        if exc.id == CLIENT_ID and exc.code == 503:
            raise Fail(exc.detail, EXIT_UNREACHABLE) from None
        raise Fail(str(exc), EXIT_REMOTE, error_json=exc.to_dict()) from None
    except trio.TooSlowError:
        error = errors.timeout("the call ran out of time (--timeout)", id=CLIENT_ID)
        raise Fail(str(error), EXIT_REMOTE, error_json=error.to_dict()) from None
    except RegistryError as exc:
        fail(f"registry: {exc}", EXIT_UNREACHABLE)
    except OSError as exc:
        fail(str(exc), EXIT_UNREACHABLE)


def _parse_request(text: str | None) -> Any:
    if text is None:
        if sys.stdin is None or sys.stdin.isatty():
            return {}
        text = sys.stdin.read()
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"request is not valid JSON: {exc}", EXIT_INPUT)


def _check_node_address(address: str | None) -> str | None:
    """`--address`: `[scheme://]HOST:PORT[?query]`, or a one-line error (exit 2)."""
    if address is None:
        return None
    bare = address.partition("://")[2] if "://" in address else address
    host, sep, port = bare.partition("?")[0].rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535 or not check_host(host):
        fail(f"--address {address!r}: expected [SCHEME://]HOST:PORT", EXIT_INPUT)
    return address


def _parse_metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--metadata {pair!r}: expected KEY=VALUE", EXIT_INPUT)
        metadata[key] = value
    return metadata


def _record_json(record: ServiceRecord) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(record)
    data["endpoints"] = [unstructure(e) for e in record.endpoints]
    data["nodes"] = [unstructure(n) for n in record.nodes]
    return data


async def _with_client(g: Globals, fn: Callable[[Client], Awaitable[Any]]) -> Any:
    async with open_client(registry=g.registry, transport=g.transport, proxy=g.proxy) as client:
        return await fn(client)


def _timed(timeout: float) -> Any:
    return trio.fail_after(timeout) if timeout > 0 else trio.CancelScope()


@click.command()
@global_options
@pass_globals
def services(g: Globals) -> None:
    """List registered services."""

    async def main() -> list[ServiceRecord]:
        async with open_registry(_registry_url(g)) as registry:
            return await registry.list_services()

    records = _run(main)
    versions: dict[str, list[str]] = {}
    for record in records:
        versions.setdefault(record.name, []).append(record.version)
    rows = [{"name": n, "versions": sorted(set(v))} for n, v in sorted(versions.items())]
    if g.output == "json":
        emit_json(rows, "json")
        return
    for row in rows:
        click.echo(f"{row['name']}\t{', '.join(row['versions'])}")


def _registry_url(g: Globals) -> str:
    from .._config import resolve_registry

    try:
        return resolve_registry(g.registry)
    except ConfigError as exc:
        fail(str(exc), EXIT_INPUT)


@click.command()
@click.argument("name")
@global_options
@pass_globals
def service(g: Globals, name: str) -> None:
    """Show a service's versions, nodes and endpoints with their schemas."""

    async def main() -> list[ServiceRecord]:
        async with open_registry(_registry_url(g)) as registry:
            return await registry.get_service(name)

    records = _run(main)
    if not records:
        fail(f"service {name} not found", EXIT_UNREACHABLE)
    data = [_record_json(r) for r in records]
    if g.output == "json":
        emit_json(data, "json")
        return
    for record in records:
        _print_record(record)


def _print_record(record: ServiceRecord) -> None:
    click.echo(f"service  {record.name}\nversion  {record.version}")
    for key, value in sorted(record.metadata.items()):
        click.echo(f"metadata {key}={value}")
    click.echo("\nnodes:")
    for node in record.nodes:
        meta = " ".join(f"{k}={v}" for k, v in sorted(node.metadata.items()))
        click.echo(f"  {node.id}\t{node.address}\t{meta}")
    click.echo("\nendpoints:")
    for endpoint in record.endpoints:
        click.echo(f"  {endpoint.name}")
        click.echo(f"    request:  {json.dumps(endpoint.request)}")
        click.echo(f"    response: {json.dumps(endpoint.response)}")
    click.echo("")


_call_options = [
    click.argument("service_name", metavar="SERVICE"),
    click.argument("endpoint"),
    click.argument("request", required=False),
    click.option("--metadata", "-m", multiple=True, help="KEY=VALUE, repeatable."),
    click.option(
        "--timeout", type=float, default=5.0, show_default=True, help="Seconds; 0 for none."
    ),
    click.option("--address", help="Call this node directly (bypasses the registry)."),
]


def _call_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_call_options):
        fn = option(fn)
    return fn


@click.command()
@_call_command
@global_options
@pass_globals
def call(
    g: Globals,
    service_name: str,
    endpoint: str,
    request: str | None,
    metadata: tuple[str, ...],
    timeout: float,
    address: str | None,
) -> None:
    """Call ENDPOINT of SERVICE with a JSON request (argument or stdin)."""
    address = _check_node_address(address)
    body = _parse_request(request)
    md = _parse_metadata(metadata)

    async def main(client: Client) -> Any:
        with _timed(timeout):
            return await client.call(service_name, endpoint, body, metadata=md, address=address)

    emit_json(_run(lambda: _with_client(g, main)), g.output)


@click.command()
@_call_command
@global_options
@pass_globals
def stream(
    g: Globals,
    service_name: str,
    endpoint: str,
    request: str | None,
    metadata: tuple[str, ...],
    timeout: float,
    address: str | None,
) -> None:
    """Open a streaming call and print each reply as it arrives (one JSON per line)."""
    address = _check_node_address(address)
    body = _parse_request(request)
    md = _parse_metadata(metadata)

    async def main(client: Client) -> None:
        with _timed(timeout):
            replies: Stream[Any]
            async with client.stream(
                service_name, endpoint, body, metadata=md, address=address
            ) as replies:
                await replies.close_send()
                reply: Any
                async for reply in replies:
                    emit_json(reply, "json")

    _run(lambda: _with_client(g, main))


@click.command()
@click.argument("name")
@click.option("--timeout", type=float, default=5.0, show_default=True)
@global_options
@pass_globals
def health(g: Globals, name: str, timeout: float) -> None:
    """Ask every node of service NAME for its health."""

    async def main(client: Client) -> list[dict[str, str]]:
        async with open_registry(_registry_url(g)) as registry:
            records = await registry.get_service(name)
        nodes = [node for record in records for node in record.nodes]
        if not nodes:
            raise errors.unavailable(f"service {name} not found", id=CLIENT_ID)
        return [await _node_health(client, name, node, timeout) for node in nodes]

    rows = _run(lambda: _with_client(g, main))
    if g.output == "json":
        emit_json(rows, "json")
    else:
        for row in rows:
            click.echo(f"{row['id']}\t{row['address']}\t{row['status']}")
    if any(row["status"] != "ok" for row in rows):
        raise SystemExit(EXIT_REMOTE)


async def _node_health(client: Client, name: str, node: Any, seconds: float) -> dict[str, str]:
    scheme = node.metadata.get("transport")
    address = f"{scheme}://{node.address}" if scheme else node.address
    try:
        with trio.fail_after(seconds):
            reply = await client.call(name, "Debug.Health", {}, address=address)
        status = str(reply.get("status", "unknown")) if isinstance(reply, dict) else "unknown"
    except errors.Error as exc:
        status = f"error: {exc}"
    except trio.TooSlowError:
        status = "error: timed out"
    return {"id": node.id, "address": node.address, "status": status}


def register_commands(group: click.Group) -> None:
    for command in (services, service, call, stream, health):
        group.add_command(command)
