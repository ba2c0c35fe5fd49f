"""TunnelTransport passes the transport conformance suite: looped back inside one tunnel, and
across two tunnels joined by a memory link (serve on one, connect from the other)."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from trimicro.registry import open_registry
from trimicro.registry._cache import open_service_cache
from trimicro.rpc import Client, RpcServer, TransportFor, handler_from_function
from trimicro.session import Connection, ConnectionHandler, MemoryTransport
from trimicro.session._quic_tls import generate_identity
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import open_tunnel
from trimicro.session.tunnel._transport import TunnelTransport
from trimicro.testing import CHECKS
from trimicro.testing._paths import open_memory_network

_hubs = itertools.count()
IDENTITY = generate_identity("tunnel-server")


class _Split:
    """Serves on one tunnel's transport and connects from another's."""

    scheme = "tunnel"

    def __init__(self, server: TunnelTransport, client: TunnelTransport) -> None:
        self._server, self._client = server, client

    async def serve(
        self, handler: ConnectionHandler, address: str, *, task_status=trio.TASK_STATUS_IGNORED
    ) -> None:
        await self._server.serve(handler, address, task_status=task_status)

    async def connect(self, nursery: trio.Nursery, address: str) -> Connection:
        return await self._client.connect(nursery, address)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance_looped_back(check, autojump_clock: trio.testing.MockClock) -> None:
    hub = MemoryTransport(f"tunnel-conformance-{next(_hubs)}")
    async with open_tunnel(hub) as tunnel:
        await check(TunnelTransport(tunnel), "")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance_across_a_link(check, autojump_clock: trio.testing.MockClock) -> None:
    hub = f"tunnel-conformance-{next(_hubs)}"
    async with (
        open_tunnel(MemoryTransport(hub), address="server") as server,
        open_tunnel(MemoryTransport(hub), peers=["server"]) as client,
    ):
        await client.wait_links(1)
        await server.wait_links(1)
        await check(_Split(TunnelTransport(server), TunnelTransport(client)), "")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_conformance_across_a_quic_link_with_a_token(
    check, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_memory_network() as net:
        server_quic = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
        client_quic = QuicTransport(network=net.host("127.0.0.1"))
        async with open_tunnel(server_quic, address="127.0.0.1:0", token="tok") as server:
            pin = f"{server.address}?cert_sha256={IDENTITY.cert_sha256}"
            async with open_tunnel(client_quic, peers=[pin], token="tok") as client:
                await client.wait_links(1)
                await server.wait_links(1)
                await check(_Split(TunnelTransport(server), TunnelTransport(client)), "")


async def test_rpc_calls_a_service_behind_the_dialling_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """b dials a; a service on b's side answers calls made on a's side."""
    hub = f"tunnel-rpc-{next(_hubs)}"

    async def hello(req: dict) -> dict:
        return {"msg": f"Hello {req['name']}"}

    server = RpcServer("greeter", {"Say.Hello": handler_from_function("Say.Hello", hello)})
    async with (
        open_registry(f"memory://tunnel-rpc-{next(_hubs)}") as registry,
        open_service_cache(registry) as cache,
        open_tunnel(MemoryTransport(hub), address="a", id="a") as a,
        open_tunnel(MemoryTransport(hub), peers=["a"], id="b") as b,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(TunnelTransport(b).serve, server.serve_connection, "greeter")
        client = Client(nursery, cache, TransportFor(TunnelTransport(a)))
        for name in ("Ann", "Bob"):
            reply = await client.call("greeter", "Say.Hello", {"name": name}, address="greeter")
            assert reply == {"msg": f"Hello {name}"}
        nursery.cancel_scope.cancel()


async def test_auth_binds_the_quic_certificate_seen_on_the_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_memory_network() as net:
        server_quic = QuicTransport(network=net.host("127.0.0.1"), identity=IDENTITY)
        client_quic = QuicTransport(network=net.host("127.0.0.1"))
        async with (
            open_tunnel(server_quic, address="127.0.0.1:0", token="tok") as server,
            open_tunnel(client_quic, peers=[server.address or ""], token="tok") as client,
        ):
            with trio.fail_after(5):
                await client.wait_links(1)
            (link_id,) = client.links()
            link = client._core.link(link_id)
            assert link is not None and link.remote_fp == IDENTITY.cert_sha256
