"""Publish/subscribe throughput: messages per second published and delivered.

    python -m bench.broker [--messages 20000]

For the memory and direct brokers (and NATS, when a `nats-server` is on PATH) it publishes N
small messages through `client.publish` to one subscriber service and reports published/s and
delivered/s. The raw floor for the direct broker is the same number of unary calls through
the same client (a delivery is one acknowledged round trip), so the ratio shows what the
broker layer costs on top of the RPC path.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess

import trio

import trimicro
from trimicro.broker._nats import open_nats


async def _run(broker: str, registry: str, transport: str, messages: int) -> tuple[float, float]:
    received = 0
    done = trio.Event()
    service = trimicro.Service("sink", registry=registry, transport=transport, broker=broker)

    @service.subscribe("bench.events")
    async def sink(message: dict[str, int]) -> None:
        nonlocal received
        received += 1
        if received == messages:
            done.set()

    async with (
        service.run(),
        trimicro.open_client(registry=registry, transport=transport, broker=broker) as client,
    ):
        await client.publish("bench.events", {"seq": -1})  # warm up lookups and connections
        started = trio.current_time()
        for seq in range(messages - 1):
            await client.publish("bench.events", {"seq": seq})
        published = trio.current_time() - started
        await done.wait()
        delivered = trio.current_time() - started
    return messages / published, messages / delivered


async def _rpc_floor(registry: str, transport: str, calls: int) -> float:
    service = trimicro.Service("floor", registry=registry, transport=transport)

    @service.endpoint("Floor.Take")
    async def take(message: dict[str, int]) -> None:
        return None

    async with (
        service.run() as running,
        trimicro.open_client(registry=registry, transport=transport) as client,
    ):
        address = f"{transport.split('://')[0]}://{running.address}"
        started = trio.current_time()
        for seq in range(calls):
            await client.call("floor", "Floor.Take", {"seq": seq}, address=address)
        return calls / (trio.current_time() - started)


async def main(messages: int) -> None:
    print(f"publish/subscribe, {messages} messages of ~10 bytes, one subscriber\n")
    memory = await _run("memory://bench", "memory://bench", "memory://bench", messages)
    print(f"  memory   published {memory[0]:>9,.0f}/s   delivered {memory[1]:>9,.0f}/s")
    direct = await _run("direct://", "memory://bench-d", "tcp://", messages)
    floor = await _rpc_floor("memory://bench-f", "tcp://", messages)
    print(f"  direct   published {direct[0]:>9,.0f}/s   delivered {direct[1]:>9,.0f}/s")
    print(f"  floor    {floor:>9,.0f} unary calls/s over the same transport (tcp)")
    print(f"  ratio    direct delivered / unary calls = {direct[1] / floor:.2f}x")
    if shutil.which("nats-server"):
        await _nats_rows(messages)


async def _nats_rows(messages: int) -> None:
    port = _free_port()
    server = await trio.lowlevel.open_process(
        ["nats-server", "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await trio.sleep(0.3)
        url = f"nats://127.0.0.1:{port}"
        nats = await _run(url, "memory://bench-n", "tcp://", messages)
        async with open_nats(url) as client:
            started = trio.current_time()
            for seq in range(messages):
                await client.publish("bench.raw", b'{"seq": %d}' % seq)
            await client.flush()
            raw = messages / (trio.current_time() - started)
        print(f"  nats     published {nats[0]:>9,.0f}/s   delivered {nats[1]:>9,.0f}/s")
        print(f"  floor    {raw:>9,.0f} raw NATS publishes/s (the same client, no trimicro layers)")
        print(f"  ratio    nats published / raw = {nats[0] / raw:.2f}x")
    finally:
        server.kill()
        await server.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    trio.run(main, parser.parse_args().messages)
