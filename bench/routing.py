"""Routing benchmark: table operations and advert processing at 1k, 10k and 100k routes.

    python -m bench.routing [--sizes 1000,10000,100000] [--repeat 3]

For each table size it times, per route (best of `--repeat` runs):

- table: create, update (a new metric), lookup by service, best routes, delete;
- adverts: encoding and decoding a whole table on the wire; processing it into an empty
  router (every route new), again (every event a duplicate), and a newer copy (every route
  refreshed, nothing changed); the events tick after every route changed; a whole-table
  advert.

It then prints how the per-route cost grows from one size to the next: a ratio near 1 means
the cost per route is flat (the total grows linearly). The sans-io core runs without trio.
What growth there is at 100k comes mostly from CPython's cyclic GC walking a heap of 100k+
routes and events (compare `--no-gc`).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections.abc import Callable

from trimicro.routing import (
    Advert,
    AdvertLimits,
    AdvertType,
    EventType,
    Route,
    RouteEvent,
    RouterCore,
    Strategy,
    Table,
    decode_advert,
    encode_advert,
)

NODES_PER_SERVICE = 10


def make_routes(n: int, router: str = "peer", metric: int = 1) -> list[Route]:
    return [
        Route(
            f"svc-{i // NODES_PER_SERVICE}",
            f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:9000",
            network="trimicro",
            router=router,
            link="network",
            metric=metric,
        )
        for i in range(n)
    ]


def best_of(repeat: int, setup: Callable[[], object], run: Callable[[object], object]) -> float:
    """Seconds for the fastest of `repeat` runs of `run(setup())` (setup not timed)."""
    times = []
    for _ in range(repeat):
        state = setup()
        start = time.perf_counter()
        run(state)
        times.append(time.perf_counter() - start)
    return min(times)


def filled(routes: list[Route]) -> Table:
    table = Table()
    for route in routes:
        table.create(route, 0.0)
    return table


def table_costs(n: int, repeat: int) -> dict[str, float]:
    routes = make_routes(n)
    cheaper = make_routes(n, metric=2)
    services = sorted({r.service for r in routes})

    def lookups(table: object) -> None:
        assert isinstance(table, Table)
        for service in services:
            table.query(service)

    def bests(table: object) -> None:
        assert isinstance(table, Table)
        for service in services:
            table.best(service)

    def fresh() -> Table:
        return filled(routes)

    lookup = f"lookup, per call ({NODES_PER_SERVICE} routes)"
    return {
        "table create": best_of(repeat, lambda: None, lambda _: fresh()) / n,
        "table update": best_of(repeat, fresh, _apply(Table.update, cheaper)) / n,
        lookup: best_of(repeat, fresh, lookups) / len(services),
        "best, per call": best_of(repeat, fresh, bests) / len(services),
        "table delete": best_of(repeat, fresh, _apply(Table.delete, routes)) / n,
    }


Op = Callable[[Table, Route, float], object]


def _apply(op: Op, routes: list[Route]) -> Callable[[object], None]:
    def run(table: object) -> None:
        assert isinstance(table, Table)
        for route in routes:
            op(table, route, 1.0)

    return run


def whole_table(routes: list[Route], at: float, limits: AdvertLimits) -> list[Advert]:
    events = [RouteEvent(EventType.UPDATE, route, at) for route in routes]
    size = limits.max_events
    return [
        Advert("peer", AdvertType.UPDATE, at, 300.0, events[i : i + size])
        for i in range(0, len(events), size)
    ]


def core_for(n: int) -> tuple[RouterCore, AdvertLimits]:
    limits = AdvertLimits(max_routes_per_peer=n, max_learned=n, peer_burst=10**6)
    core = RouterCore("me", strategy=Strategy.ALL, limits=limits)
    core.start(0.0)
    return core, limits


def advert_costs(n: int, repeat: int) -> dict[str, float]:
    routes = make_routes(n)
    _, limits = core_for(n)
    first, later = whole_table(routes, 1.0, limits), whole_table(routes, 2.0, limits)
    wire = [encode_advert(advert) for advert in first]

    def process(adverts: list[Advert], times: int) -> Callable[[object], None]:
        def run(core: object) -> None:
            assert isinstance(core, RouterCore)
            for _ in range(times):
                for advert in adverts:
                    core.receive_advert(advert, 5.0)

        return run

    def learned() -> RouterCore:
        core = core_for(n)[0]
        process(first, 1)(core)
        return core

    def tick(core: object) -> None:
        assert isinstance(core, RouterCore)
        core.handle_timer(10.0)

    def flush(core: object) -> None:
        assert isinstance(core, RouterCore)
        core.solicit(11.0)
        core.adverts_to_send(11.0)

    return {
        "encode (wire)": best_of(repeat, lambda: None, lambda _: [encode_advert(a) for a in first])
        / n,
        "decode (wire)": best_of(repeat, lambda: None, lambda _: [decode_advert(w) for w in wire])
        / n,
        "process: new routes": best_of(repeat, lambda: core_for(n)[0], process(first, 1)) / n,
        "process: duplicates": best_of(repeat, learned, process(first, 1)) / n,
        "process: refresh": best_of(repeat, learned, process(later, 1)) / n,
        "events tick (all changed)": best_of(repeat, learned, tick) / n,
        "whole-table advert": best_of(repeat, learned, flush) / n,
    }


def report(sizes: list[int], results: dict[int, dict[str, float]]) -> None:
    names = list(results[sizes[0]])
    head = f"{'µs per route':<28}" + "".join(f"{n:>12,}" for n in sizes)
    growth = "".join(f"{f'x{b // a} ->':>14}" for a, b in itertools.pairwise(sizes))
    print(head + "   growth of per-route cost" + growth)
    for name in names:
        cells = "".join(f"{results[n][name] * 1e6:>12.2f}" for n in sizes)
        ratios = "".join(
            f"{results[b][name] / results[a][name]:>14.2f}" for a, b in itertools.pairwise(sizes)
        )
        print(f"{name:<28}{cells}{' ' * 29}{ratios}")
    ops = "  ".join(f"{n:,}: {1 / results[n]['table create']:,.0f}/s" for n in sizes)
    print(f"\ntable creates per second — {ops}")
    for n in sizes:
        whole = results[n]["process: new routes"] * n
        print(f"processing a whole table of {n:,} routes (new): {whole * 1e3:,.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-gc", action="store_true", help="cyclic GC off: see what it costs")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {n: {**table_costs(n, args.repeat), **advert_costs(n, args.repeat)} for n in sizes}
    report(sizes, results)


if __name__ == "__main__":
    main()
