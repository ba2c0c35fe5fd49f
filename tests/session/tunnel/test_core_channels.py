"""The core's channel view and link choice, used by the tunnel broker: `announced()`,
`ChannelsAnnounced` events, a unicast dial on a chosen link, `send_links` (sans-io, Sim)."""

from __future__ import annotations

import pytest

from trimicro.session.tunnel._events import (
    ChannelsAnnounced,
    DialFailed,
    SessionAccepted,
    SessionData,
    SessionOpened,
)
from trimicro.session.tunnel._messages import Mode

from ._sim import Sim


def _star() -> Sim:
    """a is linked to b, c and d; b and c listen on `topic`, d on `other`."""
    sim = Sim()
    for name in "abcd":
        sim.add(name)
    for name in "bcd":
        sim.connect("a", name)
    sim.cores["b"].listen("topic", 0.0)
    sim.cores["c"].listen("topic", 0.0)
    sim.cores["d"].listen("other", 0.0)
    sim.run_until(1.0)
    return sim


def test_announced_maps_channels_to_links_and_new_mappings_are_events() -> None:
    sim = _star()
    core = sim.cores["a"]
    assert core.announced() == {"topic": ["a>b#1", "a>c#2"], "other": ["a>d#3"]}
    announced = [e for _, e in sim.of("a", ChannelsAnnounced)]
    assert sorted(announced, key=lambda e: e.link) == [
        ChannelsAnnounced("a>b#1", ("topic",)),
        ChannelsAnnounced("a>c#2", ("topic",)),
        ChannelsAnnounced("a>d#3", ("other",)),
    ]
    sim.run_for(31.0)  # the periodic re-announce refreshes, it is not news
    assert len(sim.of("a", ChannelsAnnounced)) == 3
    sim.cores["d"].listen("late", sim.now)
    sim.run_for(1.0)
    assert [e for _, e in sim.of("a", ChannelsAnnounced)][-1] == ChannelsAnnounced(
        "a>d#3", ("late",)
    )
    sim.cores["b"].unlisten("topic", sim.now)
    sim.run_for(1.0)
    assert core.announced()["topic"] == ["a>c#2"]
    assert core.listening() == set() and sim.cores["d"].listening() == {"other", "late"}


def test_a_unicast_dial_on_a_chosen_link_opens_there_and_nowhere_else() -> None:
    sim = _star()
    core = sim.cores["a"]
    key = core.dial("topic", Mode.UNICAST, sim.now, link="a>c#2")
    sim.run_for(1.0)
    assert sim.of("a", SessionOpened)[-1][1].key == key
    assert core.session_link(key) == "a>c#2" and core.send_links(key) == ["a>c#2"]
    core.send(key, b"x", sim.now)
    sim.run_for(1.0)
    assert [e.data for _, e in sim.of("c", SessionData)] == [b"x"]
    assert not sim.of("b", SessionAccepted)
    sim.check()


def test_a_dial_on_a_chosen_link_fails_rather_than_moving() -> None:
    sim = _star()
    core = sim.cores["a"]
    gone = core.dial("topic", Mode.UNICAST, sim.now, link="a>zz#9")
    sim.flush()
    (_, failed), *_ = sim.of("a", DialFailed)
    assert failed.key == gone and "is not up" in failed.reason
    refused = core.dial("topic", Mode.UNICAST, sim.now, link="a>d#3")  # d does not listen
    sim.run_for(1.0)
    assert [e.key for _, e in sim.of("a", DialFailed)] == [gone, refused]
    # chosen while opening, then the link dies: no move to b or c
    pending = core.dial("topic", Mode.UNICAST, sim.now, link="a>b#1")
    sim.cut(sim.wires[("a", "a>b#1")])
    assert sim.of("a", DialFailed)[-1][1].key == pending
    assert not sim.of("c", SessionAccepted)
    sim.check()
    with pytest.raises(ValueError, match="only a unicast"):
        core.dial("topic", Mode.MULTICAST, sim.now, link="a>b#1")


def test_send_links_follow_the_mode() -> None:
    sim = _star()
    core = sim.cores["a"]
    multicast = core.dial("topic", Mode.MULTICAST, sim.now)
    broadcast = core.dial("topic", Mode.BROADCAST, sim.now)
    assert sorted(core.send_links(multicast)) == ["a>b#1", "a>c#2"]
    assert sorted(core.send_links(broadcast)) == ["a>b#1", "a>c#2", "a>d#3"]
    core.listen("mine", sim.now)
    loopback = core.dial("mine", Mode.UNICAST, sim.now)
    assert core.send_links(loopback) == []
    core.close_session(multicast, sim.now)
    assert core.send_links(multicast) == []
