"""The trio driver under MockClock over in-memory links, with exact virtual times."""

from __future__ import annotations

import itertools
import logging
import random
from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from trimicro.nursery import Backoff
from trimicro.session import MemoryTransport
from trimicro.session.tunnel import DialError, Tunnel, TunnelOptions, open_tunnel

from ._shaped import Shape, ShapedTransport

_hubs = itertools.count()


def _hub() -> str:
    return f"tunnel-{next(_hubs)}"


def _node(hub: str, delay: float = 0.0) -> ShapedTransport:
    return ShapedTransport(MemoryTransport(hub), Shape(delay=delay))


async def _echo_one(tunnel: Tunnel, channel: str) -> None:
    async with tunnel.listen(channel) as listener:
        async for session in listener:
            async with session:
                async for data in session:
                    await session.send(data)


async def test_discovery_of_a_channel_on_a_peer(autojump_clock: trio.testing.MockClock) -> None:
    hub = _hub()
    async with (
        open_tunnel(_node(hub), address="a", id="a", rng=random.Random(1)) as a,
        open_tunnel(_node(hub, 0.01), peers=["a"], id="b", rng=random.Random(2)) as b,
        trio.open_nursery() as nursery,
    ):
        await a.wait_links(1)
        assert trio.current_time() == pytest.approx(0.01)  # b's connect arrived
        await trio.sleep(1.0)
        (link,) = a.statistics().links
        assert link.peer == "b" and link.rtt == pytest.approx(0.01) and link.channels == 0
        nursery.start_soon(_echo_one, b, "svc")
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        # a does not know "svc" yet: it discovers; b answers after its 10 ms, a opens,
        # b accepts after another 10 ms. B dialled A: the session rides a link A accepted.
        async with await a.dial("svc") as session:
            assert trio.current_time() - start == pytest.approx(0.02)
            await session.send(b"hello")
            assert await session.receive() == b"hello"
        assert a.statistics().links[0].channels == 1
        nursery.cancel_scope.cancel()


async def test_sessions_flow_both_ways_on_dialled_and_accepted_links(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    async with (
        open_tunnel(_node(hub), address="a", id="a") as a,
        open_tunnel(_node(hub), peers=["a"], id="b") as b,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_echo_one, a, "on-a")
        nursery.start_soon(_echo_one, b, "on-b")
        await a.wait_links(1)
        await b.wait_links(1)
        for here, channel in ((a, "on-b"), (b, "on-a")):
            async with await here.dial(channel) as session:
                await session.send(channel.encode())
                assert await session.receive() == channel.encode()
        nursery.cancel_scope.cancel()


async def test_dial_times_out_exactly(autojump_clock: trio.testing.MockClock) -> None:
    hub = _hub()
    async with (
        open_tunnel(_node(hub), address="a") as a,
        open_tunnel(_node(hub), peers=["a"]) as b,
    ):
        await b.wait_links(1)
        start = trio.current_time()
        with pytest.raises(DialError, match="no listener for 'nobody'"):
            await a.dial("nobody", timeout=2.0)
        assert trio.current_time() - start == pytest.approx(2.0)
        with pytest.raises(DialError):
            await a.dial("nobody")
        assert trio.current_time() - start == pytest.approx(7.0)  # the default is 5 s


async def test_unicast_prefers_the_lower_rtt_link_and_fails_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_tunnel(_node(hub), address="a", id="a"))
        nursery = await stack.enter_async_context(trio.open_nursery())
        fast_scope = trio.CancelScope()

        async def node(name: str, delay: float, scope: trio.CancelScope) -> None:
            with scope:
                async with open_tunnel(_node(hub, delay), peers=["a"], id=name) as tunnel:
                    await _echo_one(tunnel, "svc")

        nursery.start_soon(node, "slow", 0.05, trio.CancelScope())
        nursery.start_soon(node, "fast", 0.01, fast_scope)
        await a.wait_links(2)
        await trio.sleep(1.0)  # the first probes are answered
        rtts = {link.peer: link.rtt for link in a.statistics().links}
        assert rtts == {"slow": pytest.approx(0.05), "fast": pytest.approx(0.01)}
        peers = {link.id: link.peer for link in a.statistics().links}
        async with await a.dial("svc") as session:
            assert peers[session.link or ""] == "fast"
            fast_scope.cancel()  # the fast node goes away
            with pytest.raises(trio.BrokenResourceError):
                await session.receive()
        async with await a.dial("svc") as session:
            assert peers[session.link or ""] == "slow"
            await session.send(b"still served")
            assert await session.receive() == b"still served"
        nursery.cancel_scope.cancel()


async def test_keepalive_detects_a_dead_link_within_three_intervals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    b_transport = _node(hub)
    async with (
        open_tunnel(_node(hub), address="a", id="a") as a,
        open_tunnel(b_transport, peers=["a"], id="b"),
    ):
        await a.wait_links(1)
        await trio.sleep(100.0)
        b_transport.shape.blackhole = True  # b hangs: it sends nothing, closes nothing
        died = trio.current_time()
        while a.links():
            await a._links_changed.park()
        detected = trio.current_time() - died
        assert detected <= 3 * 30.0
        # b's last message was its echo of a's keepalive probe at t=90.
        assert trio.current_time() == pytest.approx(90.0 + 75.0)


async def test_a_configured_peer_is_redialled_when_it_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    reconnect = Backoff(base=5.0, cap=5.0, jitter=False)  # exact: every 5 s
    async with open_tunnel(_node(hub), peers=["a"], id="b", reconnect=reconnect) as b:
        async with open_tunnel(_node(hub), address="a", id="a"):
            await b.wait_links(1)
        assert b.links() == []
        gone = trio.current_time()
        await trio.sleep(12.0)  # a is away; b keeps trying at +5, +10, ...
        async with open_tunnel(_node(hub), address="a", id="a") as a, trio.open_nursery() as n:
            n.start_soon(_echo_one, b, "behind-b")
            await b.wait_links(1)
            assert trio.current_time() == pytest.approx(gone + 15.0)
            async with await a.dial("behind-b") as session:
                await session.send(b"back")
                assert await session.receive() == b"back"
            n.cancel_scope.cancel()


async def test_channel_mappings_expire_two_minutes_after_the_last_announce(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    b_transport = _node(hub)
    async with (
        open_tunnel(_node(hub), address="a", id="a") as a,
        open_tunnel(b_transport, peers=["a"], id="b") as b,
    ):
        listener = b.listen("svc")
        await a.wait_links(1)
        await trio.sleep(50.0)
        (link,) = a.links()
        assert a._core.channels_of(link) == {"svc"}
        # b's announces are lost from now on (its last one went out at t=30).
        b_transport.shape.drop = lambda m: m.get("t") == "announce"
        await trio.sleep(30.0 + 120.0 - 50.0 - 0.001)
        assert a._core.channels_of(link) == {"svc"}
        await trio.sleep(0.001)
        await trio.testing.wait_all_tasks_blocked()  # the timer task ran at t=150 too
        assert a._core.channels_of(link) == set()
        await listener.aclose()


async def test_multicast_reaches_exactly_the_announcing_links(
    autojump_clock: trio.testing.MockClock,
) -> None:
    hub = _hub()
    got: dict[str, list[bytes]] = {"b": [], "c": [], "d": []}

    async def subscriber(tunnel: Tunnel, name: str, channel: str) -> None:
        async with tunnel.listen(channel) as listener:
            async for session in listener:
                async for data in session:
                    got[name].append(data)

    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_tunnel(_node(hub), address="a", id="a"))
        nursery = await stack.enter_async_context(trio.open_nursery())
        for name in "bcd":
            node = await stack.enter_async_context(open_tunnel(_node(hub), peers=["a"], id=name))
            channel = "other" if name == "d" else "topic"
            nursery.start_soon(subscriber, node, name, channel)
        await a.wait_links(3)
        await trio.sleep(1.0)
        async with await a.dial("topic", mode="multicast") as session:
            for i in range(3):
                await session.send(b"m%d" % i)
            await trio.sleep(1.0)
        assert got == {"b": [b"m0", b"m1", b"m2"], "c": [b"m0", b"m1", b"m2"], "d": []}
        by_peer = {link.peer: link for link in a.statistics().links}
        # d's link carried no session message at all (keepalives etc. only).
        assert by_peer["d"].messages_out < by_peer["b"].messages_out - 3
        nursery.cancel_scope.cancel()


async def test_broadcast_reaches_every_listener(autojump_clock: trio.testing.MockClock) -> None:
    hub = _hub()
    got: list[str] = []

    async def subscriber(tunnel: Tunnel) -> None:
        async with tunnel.listen("all") as listener:
            async for session in listener:
                async for data in session:
                    got.append(f"{tunnel.id}:{data.decode()}")

    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(open_tunnel(_node(hub), address="a", id="a"))
        nursery = await stack.enter_async_context(trio.open_nursery())
        for name in "bc":
            node = await stack.enter_async_context(open_tunnel(_node(hub), peers=["a"], id=name))
            nursery.start_soon(subscriber, node)
        await a.wait_links(2)
        async with await a.dial("all", mode="broadcast") as session:
            await session.send(b"x")
            await trio.sleep(1.0)
        assert sorted(got) == ["b:x", "c:x"]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("token_a", "token_b"), [("same", "same"), ("right", "wrong"), ("t", None)]
)
async def test_token_auth(
    token_a: str, token_b: str | None, autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    hub = _hub()
    caplog.set_level(logging.INFO, "trimicro.session.tunnel")
    async with (
        open_tunnel(_node(hub), address="a", id="a", token=token_a) as a,
        open_tunnel(_node(hub), peers=["a"], id="b", token=token_b) as b,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_echo_one, b, "svc")
        await trio.sleep(3.0)
        if token_a == token_b:
            assert a.links() and b.links()
            async with await a.dial("svc") as session:
                await session.send(b"authenticated")
                assert await session.receive() == b"authenticated"
        else:
            assert a.links() == [] == b.links()
            assert a.statistics().auth_failures >= 1
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("token" in w and "tunnel a" in w for w in warnings), warnings
            with pytest.raises(DialError):
                await a.dial("svc", timeout=1.0)
        nursery.cancel_scope.cancel()


async def test_a_reader_behind_pushes_back_and_a_stuck_one_loses_its_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from trimicro.session.tunnel._messages import MAX_BATCH
    from trimicro.session.tunnel._session import SESSION_QUEUE, SESSION_STALL

    hub = _hub()
    async with (
        open_tunnel(_node(hub), address="a") as a,
        open_tunnel(_node(hub), peers=["a"]) as b,
    ):
        listener = b.listen("sink")
        await a.wait_links(1)
        async with await a.dial("sink") as session, trio.open_nursery() as nursery:
            accepted = await listener.accept()

            async def sender(count: int) -> None:
                for i in range(count):
                    await session.send(b"%d" % i)

            nursery.start_soon(sender, 4 * SESSION_QUEUE)
            await trio.sleep(1.0)
            # The reader is behind: b's link reader waits rather than queueing more (memory
            # links have no flow control below; over QUIC the stream window pushes back).
            # It delivers a received batch whole first, so it stops within one batch.
            assert SESSION_QUEUE <= len(accepted._buffer) < SESSION_QUEUE + MAX_BATCH
            for i in range(4 * SESSION_QUEUE):  # nothing lost, nothing reordered
                assert await accepted.receive() == b"%d" % i
            # Now the reader stops for good: after SESSION_STALL its session is closed.
            nursery.start_soon(sender, SESSION_QUEUE + 5)
            start = trio.current_time()
            while accepted._ended is None:
                await trio.sleep(0.5)
            assert trio.current_time() - start == pytest.approx(SESSION_STALL, abs=0.5)
            with pytest.raises(trio.BrokenResourceError, match="reader is stuck"):
                while True:
                    await accepted.receive()
            nursery.cancel_scope.cancel()
        assert a.links() and b.links()  # the link lives on
        await listener.aclose()


async def test_an_oversized_send_is_refused_and_the_link_stays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Over `max_message` the send raises ValueError before anything is queued: the link (and
    every other session on it) is untouched, and the next message goes through."""
    hub = _hub()
    options = TunnelOptions(max_message=1000)
    async with (
        open_tunnel(_node(hub), address="a", id="a", options=options) as a,
        open_tunnel(_node(hub), peers=["a"], id="b", options=options) as b,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_echo_one, a, "svc")
        await b.wait_links(1)
        async with await b.dial("svc") as session:
            with pytest.raises(ValueError, match="1001 bytes exceeds max_message"):
                await session.send(b"x" * 1001)
            await session.send(b"y" * 1000)
            assert await session.receive() == b"y" * 1000
        assert [link.state for link in b.statistics().links] == ["connected"]
        assert b.statistics().links[0].errors_total == 0
        nursery.cancel_scope.cancel()
