"""Unary calls over QUIC: trimicro beside a raw aioquic floor measured in the same run.

    python -m bench.quic [--seconds 2]

The floor is the least code that moves the same traffic: one aioquic `QuicConnection` per side,
driven by a bare trio loop (receive a datagram, feed it, send what aioquic wants to send, honour
its timer), carrying length + call-id framed echoes on ONE bidirectional stream, with a
dispatcher by call id. Same payloads (16 B and 64 KiB), same concurrency (1 and 64 in flight),
same datagram size (16,000 on loopback), same process and core. trimicro runs `client.call`
to a real service over `quic://`, selector bypassed. Ratios are trimicro / floor.
"""

from __future__ import annotations

import argparse
import math
import socket
import statistics
import struct
from collections.abc import Callable

import trio
from aioquic._buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted, StreamDataReceived
from aioquic.quic.packet import pull_quic_header

import trimicro
from bench.__main__ import Result, drive, trimicro_case
from trimicro.session._quic_tls import generate_identity

HEADER = struct.Struct(">II")  # length, call id
ALPN = ["bench"]
DATAGRAM_SIZE = 16_000  # what quic:// uses on loopback


class _RawPeer:
    """One QuicConnection and its UDP socket, driven by a bare loop."""

    def __init__(self, sock: socket.socket, on_frame: Callable[[int, int, bytes], None]):
        self.sock = sock
        self.conn: QuicConnection | None = None
        self.peer: tuple[str, int] | None = None
        self.on_frame = on_frame  # (stream id, call id, body)
        self.buffers: dict[int, bytearray] = {}
        self.connected = trio.Event()

    def transmit(self) -> None:
        assert self.conn is not None
        for data, addr in self.conn.datagrams_to_send(now=trio.current_time()):
            try:
                self.sock.sendto(data, addr)
            except BlockingIOError:
                pass  # a full socket buffer is a lost datagram: QUIC recovers, as the OS would

    def send_frame(self, stream_id: int, call_id: int, body: bytes, *, end: bool = False) -> None:
        assert self.conn is not None
        self.conn.send_stream_data(stream_id, HEADER.pack(len(body), call_id) + body, end)
        self.transmit()

    async def run(self, make_connection: Callable[[bytes], QuicConnection] | None) -> None:
        while True:
            timer = self.conn.get_timer() if self.conn is not None else None
            with trio.move_on_at(timer if timer is not None else math.inf) as scope:
                await trio.lowlevel.wait_readable(self.sock)
            if scope.cancelled_caught:
                assert self.conn is not None
                self.conn.handle_timer(trio.current_time())
            else:
                while True:  # everything that is waiting, then one transmit
                    try:
                        data, addr = self.sock.recvfrom(65536)
                    except BlockingIOError:
                        break
                    if self.conn is None:
                        assert make_connection is not None
                        self.conn, self.peer = make_connection(data), addr
                    self.conn.receive_datagram(data, addr, now=trio.current_time())
            self._events()
            self.transmit()

    def _events(self) -> None:
        assert self.conn is not None
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                self.connected.set()
            elif isinstance(event, StreamDataReceived):
                buffer = self.buffers.setdefault(event.stream_id, bytearray())
                buffer += event.data
                while len(buffer) >= HEADER.size:
                    length, call_id = HEADER.unpack_from(buffer)
                    if len(buffer) < HEADER.size + length:
                        break
                    body = bytes(buffer[HEADER.size : HEADER.size + length])
                    del buffer[: HEADER.size + length]
                    self.on_frame(event.stream_id, call_id, body)
                if event.end_stream:
                    del self.buffers[event.stream_id]


async def floor_case(
    payload: bytes, concurrency: int, seconds: float, *, stream_per_call: bool = False
) -> Result:
    """One framed stream with call ids, or (`stream_per_call`) a new QUIC stream per call."""
    identity = generate_identity("localhost")
    server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock in (server_sock, client_sock):
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
    server_address = server_sock.getsockname()

    def make_server_connection(first: bytes) -> QuicConnection:
        header = pull_quic_header(Buffer(data=first), host_cid_length=8)
        configuration = QuicConfiguration(
            is_client=False, alpn_protocols=ALPN, max_datagram_size=DATAGRAM_SIZE
        )
        configuration.certificate = identity.certificate
        configuration.private_key = identity.private_key
        return QuicConnection(
            configuration=configuration,
            original_destination_connection_id=header.destination_cid,
        )

    def echo(stream_id: int, call_id: int, body: bytes) -> None:
        server.send_frame(stream_id, call_id, body, end=stream_per_call)

    server = _RawPeer(server_sock, echo)
    waiting: dict[int, trio.Event] = {}
    client = _RawPeer(client_sock, lambda stream_id, call_id, body: waiting.pop(call_id).set())
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=ALPN, max_datagram_size=DATAGRAM_SIZE, verify_mode=0
    )
    client.conn = QuicConnection(configuration=configuration)
    client.conn.connect(server_address, now=trio.current_time())
    ids = iter(range(1, 1 << 31))

    async def call() -> None:
        call_id, done = next(ids), trio.Event()
        waiting[call_id] = done
        assert client.conn is not None
        stream_id = client.conn.get_next_available_stream_id() if stream_per_call else 0
        client.send_frame(stream_id, call_id, payload, end=stream_per_call)
        await done.wait()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run, make_server_connection)
            nursery.start_soon(client.run, None)
            client.transmit()
            await client.connected.wait()
            await drive(call, concurrency, min(0.3, seconds))  # warm up, as trimicro's case
            result = await drive(call, concurrency, seconds)
            nursery.cancel_scope.cancel()
    finally:
        server_sock.close()
        client_sock.close()
    return result


def _row(label: str, result: Result) -> str:
    return (
        f"  {label:<11} {result.rate:>9,.0f} calls/s   p50 {result.percentile(0.5) * 1e3:7.3f} ms"
        f"   p99 {result.percentile(0.99) * 1e3:7.3f} ms"
    )


async def main(seconds: float) -> None:
    print(f"trimicro {trimicro.__version__} unary calls over QUIC, {seconds:g} s per case\n")
    ratios = []
    for payload_name, payload in (("small", b"x" * 16), ("64 KiB", b"x" * 65536)):
        for concurrency in (1, 64):
            floor = await floor_case(payload, concurrency, seconds)
            ours = await trimicro_case(payload, concurrency, seconds, transport="quic://")
            ratio = ours.rate / floor.rate
            ratios.append(ratio)
            p50 = ours.percentile(0.5) / floor.percentile(0.5)
            print(f"{payload_name}, {concurrency} in flight:")
            print(_row("raw aioquic", floor))
            print(_row("trimicro", ours))
            print(f"  ratio       {ratio:.2f}x of the floor's calls/s, p50 {p50:.2f}x the floor's")
            if payload_name == "small":  # the mapping docs/protocol.md chose against
                per_call = await floor_case(payload, concurrency, seconds, stream_per_call=True)
                print(_row("raw/stream", per_call) + f"   {per_call.rate / floor.rate:.2f}x of one")
            print()
    print(
        f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x "
        "(target >= 0.6x small calls at 64 in flight, p50 <= 1.5x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each case")
    trio.run(main, parser.parse_args().seconds)
