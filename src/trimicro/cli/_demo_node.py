"""The node `trimicro demo` kills with SIGKILL: `python -m trimicro.cli._demo_node REGISTRY`.

A real process, so the kill is a real one: no deregistration, no drain, its connections
simply die. Prints "ready" once it is registered.
"""

from __future__ import annotations

import sys

import trio

from .._service import RunningService, Service, serve_until_signal


def main() -> None:
    service = Service("echo", registry=sys.argv[1])

    @service.endpoint("Echo.Where", idempotent=True)
    async def where(req: None) -> str:
        return "the node that gets killed"

    def ready(running: RunningService) -> None:
        print("ready", flush=True)

    trio.run(lambda: serve_until_signal(service, on_ready=ready))


if __name__ == "__main__":
    main()
