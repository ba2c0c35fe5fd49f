"""Resolvers against real sockets: a tiny DNS server (dnspython wire format) and HTTP."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trio

from trimicro.network import ResolveError, dns_resolver, http_resolver, static_resolver

RECORDS = {
    ("_network._udp.net.example.", "SRV"): ["10 5 9085 b.example.", "5 5 8085 a.example."],
    ("plain.example.", "A"): ["10.0.0.7", "10.0.0.8"],
}


async def _dns_server(sock: trio.socket.SocketType) -> None:
    while True:
        data, peer = await sock.recvfrom(4096)
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        found = RECORDS.get((question.name.to_text(), kind))
        if found:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, kind, found)
            )
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        await sock.sendto(response.to_wire(), peer)


async def test_dns_prefers_srv_records_then_a_records_with_the_default_port(
    nursery: trio.Nursery,
) -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        nursery.start_soon(_dns_server, sock)
        resolve = dns_resolver(
            ["net.example", "plain.example", "10.1.1.1:7000"],
            nameserver="127.0.0.1",
            nameserver_port=sock.getsockname()[1],
        )
        found = await resolve()
        nursery.cancel_scope.cancel()
    assert found[:2] == ["a.example:8085", "b.example:9085"]  # SRV, by priority
    assert sorted(found[2:4]) == ["10.0.0.7:8085", "10.0.0.8:8085"]  # A records, port 8085
    assert found[4:] == ["10.1.1.1:7000"]  # an IP literal as is


async def _http_server(
    body: bytes, status: str = "200 OK"
) -> tuple[Callable[[trio.SocketStream], Awaitable[None]], bytes]:
    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        await stream.send_all(head.encode() + body)
        await stream.aclose()

    return handler, body


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            {"nodes": [{"address": "b:8085", "priority": 2}, {"address": "a:8085", "priority": 1}]},
            "200 OK",
            ["a:8085", "b:8085"],
        ),
        ({"nodes": [{"priority": 1}]}, "200 OK", ResolveError),
        ({}, "404 Not Found", ResolveError),
    ],
)
async def test_http_reads_nodes_by_priority_and_refuses_bad_documents(
    nursery: trio.Nursery, body: object, status: str, expected: object
) -> None:
    handler, _ = await _http_server(json.dumps(body).encode(), status)
    (listener,) = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listener.socket.getsockname()[1]
    resolve = http_resolver(f"http://127.0.0.1:{port}/network")
    if expected is ResolveError:
        with pytest.raises(ResolveError, match="network"):
            await resolve()
    else:
        assert await resolve() == expected
    nursery.cancel_scope.cancel()


async def test_static_is_the_list_without_duplicates() -> None:
    assert await static_resolver(["a:1", "b:2", "a:1"])() == ["a:1", "b:2"]
