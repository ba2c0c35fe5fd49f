"""Flap damping on its own (sans-io): penalties, suppression, release, and the docs' diagram."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trimicro.routing import DampingParams, EventType, FlapDamper, FlapState, Route, RouteEvent
from trimicro.routing._flap import TRANSITIONS, Level, Trigger, flap_docs

ROUTE = Route("flappy", "10.0.0.1:1", router="me")
DOCS = Path(__file__).parents[2] / "docs" / "routing.md"


def change(damper: FlapDamper, at: float, kind: EventType = EventType.UPDATE) -> None:
    damper.record(RouteEvent(kind, ROUTE, at), at)


def simulate(
    damper: FlapDamper,
    changes: list[tuple[float, EventType]],
    until: float,
    *,
    first_tick: float = 10.0,
) -> list[tuple[float, RouteEvent]]:
    """Ticks every 10 s from `first_tick` interleaved with `changes`, up to `until`; returns
    what each tick sent. A change at a tick's time comes first."""
    sent, queue, tick = [], sorted(changes), first_tick
    while min(tick, queue[0][0] if queue else math.inf) < until:
        if queue and queue[0][0] <= tick:
            at, kind = queue.pop(0)
            change(damper, at, kind)
        else:
            sent += [(tick, event) for event in damper.tick(tick)]
            tick += 10.0
    return sent


def test_the_chosen_numbers_recover_and_go_micros_are_refused() -> None:
    params = DampingParams()
    assert (params.penalty, params.half_life, params.suppress) == (100, 30, 200)
    assert (params.reuse, params.max_suppress, params.ceiling, params.forget) == (50, 90, 400, 25)
    assert params.reuse_delay(params.ceiling) == pytest.approx(params.max_suppress)
    with pytest.raises(ValueError, match="caps the penalty at 160"):
        DampingParams(reuse=20.0)  # go-micro v1.18: nothing could ever be suppressed


def test_a_single_change_goes_out_at_the_next_tick_and_is_forgotten() -> None:
    damper = FlapDamper()
    sent = simulate(damper, [(1.0, EventType.CREATE)], until=11.0)
    assert sent == [(10.0, RouteEvent(EventType.CREATE, ROUTE, 1.0))]
    assert damper.state(ROUTE.key) is FlapState.QUIET
    # 100 halves below forget (25) 60 s later: the history goes at the first tick after 61
    assert simulate(damper, [], until=61.0, first_tick=20.0) == []
    assert damper.state(ROUTE.key) is FlapState.QUIET
    damper.tick(70.0)
    assert damper.state(ROUTE.key) is FlapState.ABSENT


def test_changes_within_a_tick_coalesce_to_the_latest() -> None:
    damper = FlapDamper()
    sent = simulate(damper, [(1.0, EventType.CREATE), (2.0, EventType.UPDATE)], until=11.0)
    assert sent == [(10.0, RouteEvent(EventType.UPDATE, ROUTE, 2.0))]


def test_four_flaps_in_a_minute_suppress_then_release_within_a_tick_of_reuse() -> None:
    damper = FlapDamper()
    flaps = [(1.0, EventType.DELETE), (16.0, EventType.CREATE), (31.0, EventType.DELETE)]
    sent = simulate(damper, flaps, until=32.0)
    assert sent == [
        (10.0, RouteEvent(EventType.DELETE, ROUTE, 1.0)),
        (20.0, RouteEvent(EventType.CREATE, ROUTE, 16.0)),
    ]
    assert damper.penalty(ROUTE.key, 31.0) == pytest.approx(100 * 2**-1 + 100 * 2**-0.5 + 100)
    assert damper.state(ROUTE.key) is FlapState.SUPPRESSED
    assert simulate(damper, [(46.0, EventType.CREATE)], until=47.0, first_tick=40.0) == []
    reuse = damper.reuse_time(ROUTE.key)
    assert reuse is not None
    assert reuse == pytest.approx(46 + 30 * math.log2(damper.penalty(ROUTE.key, 46.0) / 50))
    assert reuse == pytest.approx(116.695, abs=1e-3)
    released = simulate(damper, [], until=300.0, first_tick=50.0)
    assert released == [(120.0, RouteEvent(EventType.CREATE, ROUTE, 46.0))]
    assert reuse <= 120.0 < reuse + 10.0
    assert damper.statistics().suppressions == damper.statistics().releases == 1


def test_max_suppress_holds_however_long_the_route_flapped() -> None:
    damper = FlapDamper()
    flaps = [(float(second), EventType.UPDATE) for second in range(1, 62, 2)]
    assert simulate(damper, flaps, until=62.0) == []  # suppressed at the third, at 5 s
    assert damper.penalty(ROUTE.key, 61.0) == 400.0  # the ceiling
    assert damper.reuse_time(ROUTE.key) == pytest.approx(61.0 + 90.0)
    released = simulate(damper, [], until=300.0, first_tick=70.0)
    assert released == [(160.0, RouteEvent(EventType.UPDATE, ROUTE, 61.0))]  # first tick ≥ 151


@given(st.lists(st.floats(30.0, 200.0), min_size=1, max_size=60))
def test_a_route_changing_at_most_once_per_half_life_is_never_damped(gaps: list[float]) -> None:
    damper = FlapDamper()
    at = 0.0
    for gap in gaps:
        at += gap
        change(damper, at)
        assert damper.state(ROUTE.key) is not FlapState.SUPPRESSED
        assert damper.tick(at) == [RouteEvent(EventType.UPDATE, ROUTE, at)]


def test_the_table_covers_every_reachable_combination() -> None:
    for state, by_trigger in TRANSITIONS.items():
        assert set(by_trigger[Trigger.EVENT]) == set(Level)
        if state is not FlapState.ABSENT:
            assert set(by_trigger[Trigger.TICK]) >= {Level.UNDER_FORGET, Level.UNDER_REUSE}
    # hysteresis: only an event above suppress enters SUPPRESSED; only a tick below reuse leaves
    for state, by_trigger in TRANSITIONS.items():
        for trigger, by_level in by_trigger.items():
            for level, (to, _) in by_level.items():
                if to is FlapState.SUPPRESSED and state is not FlapState.SUPPRESSED:
                    assert (trigger, level) == (Trigger.EVENT, Level.OVER_SUPPRESS)
                if state is FlapState.SUPPRESSED and to is not FlapState.SUPPRESSED:
                    assert trigger is Trigger.TICK
                    assert level in (Level.UNDER_REUSE, Level.UNDER_FORGET)


def test_docs_draw_the_diagram_from_the_table() -> None:
    text = DOCS.read_text()
    begin, end = "<!-- flap-table:begin -->\n", "<!-- flap-table:end -->"
    generated = text[text.index(begin) + len(begin) : text.index(end)]
    assert generated == flap_docs(), (
        "docs/routing.md is out of date: paste the output of "
        "python -c 'from trimicro.routing._flap import flap_docs; print(flap_docs(), end=\"\")'"
    )
