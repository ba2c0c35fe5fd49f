"""Streaming endpoints over a websocket: each message one request or one reply."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection

from trimicro.gateway._proxy import open_websocket

from .conftest import make_counter, running_gateway


def connect(address: str, path: str) -> AbstractAsyncContextManager[WebSocketConnection]:
    # The gateway's own client: trio-websocket's open_websocket_url leaks its socket when the
    # upgrade is refused.
    return open_websocket(address, path)


async def _drain(ws: object) -> tuple[list[object], int]:
    """Every message until the server closes, and the close code."""
    messages: list[object] = []
    while True:
        try:
            messages.append(json.loads(await ws.get_message()))  # type: ignore[attr-defined]
        except ConnectionClosed as closed:
            assert closed.reason is not None
            return messages, closed.reason.code


async def test_server_stream_via_rpc_and_via_path() -> None:
    async with running_gateway(make_counter()) as (gateway, _):
        query = '/rpc?service=counter&endpoint=Count.Up&request={"to":3}'
        async with connect(gateway.address, query) as ws:
            via_rpc = await _drain(ws)
        async with connect(gateway.address, "/counter/count/up?to=2") as ws:
            via_path = await _drain(ws)
    assert via_rpc == ([{"value": 0}, {"value": 1}, {"value": 2}], 1000)
    assert via_path == ([{"value": 0}, {"value": 1}], 1000)


async def test_client_stream_ends_with_an_empty_message() -> None:
    async with running_gateway(make_counter()) as (gateway, _):
        url = "/rpc?service=counter&endpoint=Count.Sum"
        async with connect(gateway.address, url) as ws:
            for n in (1, 2, 3):
                await ws.send_message(json.dumps({"value": n}))
            await ws.send_message("")  # end of input
            result = await _drain(ws)
    assert result == ([{"sum": 6, "count": 3}], 1000)


async def test_bidirectional_each_message_a_request_and_a_reply() -> None:
    async with running_gateway(make_counter()) as (gateway, _):
        async with connect(gateway.address, "/counter/count/echo") as ws:
            for word in ("a", "b", "c"):
                await ws.send_message(json.dumps({"word": word}))
                assert json.loads(await ws.get_message()) == {"word": word}


async def test_stream_error_is_a_last_message_and_a_4xxx_close() -> None:
    async with running_gateway(make_counter()) as (gateway, _):
        async with connect(gateway.address, "/counter/count/fail") as ws:
            messages, code = await _drain(ws)
        async with connect(gateway.address, "/counter/count/echo") as ws:
            await ws.send_message("{not json")
            bad, bad_code = await _drain(ws)
    assert messages[0] == {"first": True}
    assert messages[1]["code"] == 409
    assert messages[1]["detail"] == "counter is in the wrong state"
    assert code == 4409
    assert bad_code == 4400
    assert "invalid JSON" in bad[0]["detail"]


async def test_refusals_before_the_upgrade_are_http_errors() -> None:
    async with running_gateway(make_counter()) as (gateway, _):
        with pytest.raises(ConnectionRejected) as unknown:
            async with connect(gateway.address, "/nobody/count/up"):
                pass
        with pytest.raises(ConnectionRejected) as unnamed:
            async with connect(gateway.address, "/rpc?service=counter"):
                pass
    assert unknown.value.status_code == 404
    assert json.loads(unknown.value.body)["detail"] == "service nobody not found"
    assert unnamed.value.status_code == 400


async def test_client_leaving_cancels_the_remote_handler() -> None:
    import trimicro

    cancelled = trio.Event()
    service = trimicro.Service("ticker")

    @service.stream_endpoint("Tick.Forever")
    async def forever(req: None, stream: trimicro.Stream[None]) -> None:
        try:
            while True:
                await stream.send({"tick": True})
                await trio.sleep(0.01)
        except trio.Cancelled:
            cancelled.set()
            raise

    async with running_gateway(service) as (gateway, _):
        async with connect(gateway.address, "/ticker/tick/forever") as ws:
            await ws.get_message()
        with trio.fail_after(5):
            await cancelled.wait()
