"""Node A of the tunnel example: listens for tunnel links and calls `greeter`, which is
served behind node B (B dialled A; A cannot dial B). See examples/tunnel/node_b.py.

    python -m examples.tunnel.node_a [--address 127.0.0.1:8085] [--token secret-token]
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from trimicro.registry import open_registry
from trimicro.registry._cache import open_service_cache
from trimicro.rpc import Client, TransportFor
from trimicro.session._quic_transport import QuicTransport
from trimicro.session.tunnel import TunnelTransport, open_tunnel


async def main(address: str, token: str, calls: int) -> None:
    quic = QuicTransport()
    async with (
        open_registry("memory://tunnel-example") as registry,
        open_service_cache(registry) as cache,
        open_tunnel(quic, address=address, token=token, id="a") as a,
        trio.open_nursery() as nursery,
    ):
        print(f"run node b with: '{a.address}?cert_sha256={quic.identity.cert_sha256}' {token}")
        await a.wait_links(1)
        client = Client(nursery, cache, TransportFor(TunnelTransport(a)))
        for i in range(calls):
            # `address=` names the tunnel channel: no registry lookup is needed.
            reply = await client.call("greeter", "Say.Hello", {"name": f"n{i}"}, address="greeter")
            print(reply, flush=True)
        (link,) = a.statistics().links
        print(f"link {link.id}: peer {link.peer}, rtt {link.rtt}, dialled by us: {link.dialled}")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m examples.tunnel.node_a")
    parser.add_argument("--address", default="127.0.0.1:8085")
    parser.add_argument("--token", default="secret-token")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    trio.run(main, args.address, args.token, args.calls)
