"""A call's metadata is capped at 64 KiB (DESIGN.md §5 "headers 64 KiB"): the client refuses
to send more, and a server refuses such a request with a 400 before any handler runs,
keeping the connection."""

from __future__ import annotations

import pytest
import trio

import trimicro
from trimicro.rpc._envelope import MAX_METADATA, ErrorFrame, Request, Response, decode, encode
from trimicro.session import TcpTransport


def _echo_service(name: str) -> trimicro.Service:
    service = trimicro.Service(name, registry=f"memory://{name}", transport="tcp://")

    @service.endpoint("Echo.Headers")
    async def headers(req: None) -> int:
        return len(trimicro.current_call().metadata)

    return service


def _request(call: int, metadata: dict[str, str]) -> Request:
    return Request(call, "limits", "Echo.Headers", metadata, None, "application/cbor", False, None)


async def test_a_server_refuses_oversized_metadata_with_400_and_keeps_the_connection() -> None:
    async with _echo_service("limits").run() as running, trio.open_nursery() as nursery:
        conn = await TcpTransport().connect(nursery, running.address)
        await conn.send(encode(_request(1, {"big": "x" * MAX_METADATA})))
        refused = decode(await conn.receive())
        assert isinstance(refused, ErrorFrame)
        assert refused.code == 400 and not refused.started
        assert f"exceeds the limit of {MAX_METADATA}" in refused.detail
        # exactly at the limit is fine, on the same connection
        await conn.send(encode(_request(2, {"k": "x" * (MAX_METADATA - 1)})))
        answered = decode(await conn.receive())
        assert isinstance(answered, Response) and answered.call == 2
        await conn.aclose()
        nursery.cancel_scope.cancel()


async def test_the_client_refuses_to_send_oversized_metadata() -> None:
    async with (
        _echo_service("limits-client").run() as running,
        trimicro.open_client(registry="memory://limits-client", transport="tcp://") as client,
    ):
        before = running.server.statistics().requests
        with pytest.raises(ValueError, match=f"exceeds the limit of {MAX_METADATA}"):
            await client.call("limits-client", "Echo.Headers", metadata={"big": "é" * 40_000})
        assert running.server.statistics().requests == before  # nothing was sent
        assert await client.call("limits-client", "Echo.Headers", metadata={"a": "b"}) >= 1
