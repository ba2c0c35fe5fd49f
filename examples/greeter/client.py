"""Call the greeter from Python: `python -m examples.greeter.client Ann`."""

from __future__ import annotations

import sys

import trio

import trimicro
from examples.greeter import HelloRequest, HelloResponse


async def main(name: str) -> None:
    async with trimicro.open_client() as client:
        with trio.fail_after(5):
            reply = await client.call(
                "greeter", "Say.Hello", HelloRequest(name), response=HelloResponse
            )
        print(reply.msg)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "world")
