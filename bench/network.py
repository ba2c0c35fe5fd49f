"""Network convergence and advert load as the network grows, in virtual time.

    python -m bench.network [--sizes 25,50,100,200] [--seed 1]

For each size: a random connected topology (a spanning tree plus n/2 extra edges) of network
nodes over in-memory links with 5 ms one-way delay, one service per site, under trio's
MockClock. Reports the virtual time until every node has a route to every service, the
real time the whole run took, and adverts sent per node per 10 s advert interval: during
convergence (the first 30 s) and in steady state (the next 120 s, which include one
full-table refresh).
"""

from __future__ import annotations

import argparse
import time

import trio
import trio.testing

from trimicro.network import NetworkOptions
from trimicro.testing._network import open_simulated_network

INTERVAL = NetworkOptions().events_interval


async def measure(n: int, seed: int) -> dict[str, float]:
    real = time.perf_counter()
    async with open_simulated_network(n, seed=seed) as net:
        start = trio.current_time()
        converged = await net.wait_converged(poll=0.1)
        await trio.sleep_until(start + 3 * INTERVAL)
        early = net.adverts_sent()
        await trio.sleep(120)
        steady = net.adverts_sent() - early
        edges = len(net.edges)
    return {
        "nodes": n,
        "edges": edges,
        "converged_s": converged,
        "early": early / n / 3,
        "steady": steady / n / (120 / INTERVAL),
        "real_s": time.perf_counter() - real,
    }


async def main(sizes: list[int], seed: int) -> None:
    print("nodes  edges  converged (virtual s)  adverts/node/interval: first 30 s  steady"
          "   real s")  # fmt: skip
    for n in sizes:
        r = await measure(n, seed)
        print(
            f"{r['nodes']:>5}  {r['edges']:>5}  {r['converged_s']:>21.1f}"
            f"  {r['early']:>32.2f}  {r['steady']:>6.2f}  {r['real_s']:>7.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="25,50,100,200")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    trio.run(main, sizes, args.seed, clock=trio.testing.MockClock(autojump_threshold=0))
