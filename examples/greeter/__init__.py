"""The greeter: the smallest useful trimicro service.

Terminal 1:  trimicro run examples.greeter:service
Terminal 2:  trimicro call greeter Say.Hello '{"name": "Ann"}'
"""

from __future__ import annotations

import logging

import attrs
import trio

import trimicro
from trimicro import errors

log = logging.getLogger("examples.greeter")

service = trimicro.Service("greeter", version="1.0.0", metadata={"team": "core"})


@attrs.frozen
class HelloRequest:
    name: str


@attrs.frozen
class HelloResponse:
    msg: str


@attrs.frozen
class SleepRequest:
    seconds: float


@attrs.frozen
class SleepResponse:
    slept: float


@service.endpoint("Say.Hello", idempotent=True)  # a greeting is safe to retry
async def hello(req: HelloRequest) -> HelloResponse:
    if not req.name:
        raise errors.bad_request("name must not be empty")
    return HelloResponse(msg=f"Hello {req.name}")


@service.endpoint("Say.Sleep")
async def sleep(req: SleepRequest) -> SleepResponse:
    """Sleeps as asked: the caller's deadline cancels it early."""
    started = trio.current_time()
    try:
        await trio.sleep(req.seconds)
    except trio.Cancelled:
        log.info("Say.Sleep cancelled after %.2f s", trio.current_time() - started)
        raise
    return SleepResponse(slept=trio.current_time() - started)


if __name__ == "__main__":
    trimicro.run(service)
