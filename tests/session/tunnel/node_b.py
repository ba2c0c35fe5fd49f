"""Node B for the tunnel e2e test: dials node A over QUIC and serves `greeter` behind it.

    python -m tests.session.tunnel.node_b ADDRESS_WITH_PIN TOKEN

B has no listening address of its own: A can reach it only over the link B dialled. Prints
`ready` on stdout once the link is up; runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import trio

from trimicro.rpc import RpcServer, handler_from_function
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import Tunnel, TunnelTransport, open_tunnel


async def hello(req: dict) -> dict:
    return {"msg": f"Hello {req['name']}", "pid": os.getpid()}


async def _ready(tunnel: Tunnel) -> None:
    await tunnel.wait_links(1)
    print("ready", flush=True)


async def main(address: str, token: str) -> None:
    server = RpcServer("greeter", {"Say.Hello": handler_from_function("Say.Hello", hello)})
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_tunnel(QuicTransport(), peers=[address], token=token, id="b") as b:
            async with trio.open_nursery() as nursery:
                await nursery.start(TunnelTransport(b).serve, server.serve_connection, "greeter")
                nursery.start_soon(_ready, b)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    trio.run(main, sys.argv[1], sys.argv[2])
