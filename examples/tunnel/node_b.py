"""Node B of the tunnel example: dials node A over QUIC and serves `greeter` behind it.

B has no listening address of its own (think: behind NAT): A reaches it only over the link
B dialled. Two terminals, from the repository root:

    python -m examples.tunnel.node_a                      # prints A's address with its pin
    python -m examples.tunnel.node_b '127.0.0.1:8085?cert_sha256=HEX' secret-token

A then calls `greeter` — served here, behind B — through the tunnel and prints the replies.
B prints `ready` on stdout once its link is up and runs until SIGTERM or SIGINT
(tests/e2e/test_tunnel_processes.py runs it as a process, too).
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
