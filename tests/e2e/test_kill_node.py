"""Three real instances; `kill -9` one: the next 100 calls all succeed, the dead node is
ejected within 5 errors, and it leaves the registry within its TTL plus one interval."""

from __future__ import annotations

import signal

import pytest
import trio

import trimicro
from trimicro.registry import open_registry

pytestmark = pytest.mark.e2e

TTL, INTERVAL = 3.0, 1.0


async def test_kill_minus_nine_is_invisible_to_callers(start_service, site_env) -> None:
    extra = ("--register-ttl", str(TTL), "--register-interval", str(INTERVAL))
    nodes = [start_service("examples.greeter:service", *extra) for _ in range(3)]
    url = site_env["TRIMICRO_REGISTRY"]
    async with (
        open_registry(url) as registry,
        trimicro.open_client(registry=url, transport="quic://", broker="memory://kill") as client,
    ):
        for _ in range(100):  # the registry is polled: mDNS answers are what we test
            if sum(len(r.nodes) for r in await registry.get_service("greeter")) == 3:
                break
            await trio.sleep(0.1)
        for i in range(30):  # calls spread over all three
            await client.call("greeter", "Say.Hello", {"name": str(i)})

        victim = nodes[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed_at = trio.current_time()
        for i in range(100):
            reply = await client.call("greeter", "Say.Hello", {"name": f"after-{i}"})
            assert reply == {"msg": f"Hello after-{i}"}
        outliers = client.selector.outliers
        assert outliers.is_ejected(victim.node_id, trio.current_time())

        for _ in range(int((TTL + INTERVAL + 2) / 0.2)):
            ids = {n.id for r in await registry.get_service("greeter") for n in r.nodes}
            if victim.node_id not in ids:
                break
            await trio.sleep(0.2)
        assert trio.current_time() - killed_at <= TTL + INTERVAL + 1
        assert ids == {nodes[1].node_id, nodes[2].node_id}
