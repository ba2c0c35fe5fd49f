"""The benchmark report: one run, every figure beside its floor, every target MET or MISSED.

    python -m bench.report [--seconds 2]       # nox -s bench

Measures, in one process and one run (each case next to the floor it is judged against):
unary calls over TCP and QUIC (16 B and 64 KiB, 1 and 64 in flight) beside the raw trio TCP
echo and the raw aioquic framed stream; grpcio's asyncio server and client (the peer users
would otherwise pick; in a subprocess, as it needs asyncio) for small calls at 64 in flight;
a proxy hop; the API gateway's `POST /rpc`; publish/subscribe (direct broker vs unary
calls); a tunnel session vs a direct QUIC connection. Writes `bench/results/report.md` and
`bench/results/report.png`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import attrs
import trio

import trimicro
from bench import gateway as gateway_bench
from bench import quic as quic_bench
from bench import tunnel as tunnel_bench
from bench.__main__ import Result, drive, floor_case, trimicro_case
from bench.broker import _rpc_floor
from bench.broker import _run as pubsub_run
from trimicro.gateway import open_gateway

RESULTS = Path(__file__).resolve().parent / "results"
SMALL, LARGE = b"x" * 16, b"x" * 65536


@attrs.frozen
class Row:
    case: str
    ours: str
    floor: str
    ratio: float
    target: str  # "" when the row is informational
    met: bool | None = None


def _calls(result: Result) -> str:
    return f"{result.rate:,.0f}/s, p50 {result.percentile(0.5) * 1e3:.2f} ms"


def _unary_rows(
    transport: str, floor_name: str, ours: Result, floor: Result, label: str, target: float
) -> list[Row]:
    ratio = ours.rate / floor.rate
    p50 = ours.percentile(0.5) / floor.percentile(0.5)
    return [
        Row(
            f"{transport} {label}: calls/s",
            _calls(ours),
            f"{floor_name} {_calls(floor)}",
            ratio,
            f">= {target}x",
            ratio >= target,
        ),
        Row(
            f"{transport} {label}: p50",
            f"{ours.percentile(0.5) * 1e3:.2f} ms",
            f"{floor.percentile(0.5) * 1e3:.2f} ms",
            p50,
            "<= 1.5x",
            p50 <= 1.5,
        ),
    ]


async def unary(seconds: float) -> list[Row]:
    rows: list[Row] = []
    for name, payload in (("16 B", SMALL), ("64 KiB", LARGE)):
        for concurrency in (1, 64):
            label = f"{name}, {concurrency} in flight"
            floor = await floor_case(payload, concurrency, seconds)
            ours = await trimicro_case(payload, concurrency, seconds, transport="tcp://")
            rows += _unary_rows("TCP", "trio", ours, floor, label, 0.5)
            floor = await quic_bench.floor_case(payload, concurrency, seconds)
            ours = await trimicro_case(payload, concurrency, seconds, transport="quic://")
            rows += _unary_rows("QUIC", "aioquic", ours, floor, label, 0.6)
    return rows


def grpc_peer(seconds: float) -> dict[str, float] | None:
    command = [sys.executable, "-m", "bench.grpc_peer", "--seconds", str(seconds)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    except (subprocess.SubprocessError, OSError):
        return None  # grpcio is not installed: the row says so
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def versus_grpc(seconds: float) -> list[Row]:
    peer = await trio.to_thread.run_sync(grpc_peer, seconds)
    ours = await trimicro_case(SMALL, 64, seconds, transport="tcp://")
    if peer is None:
        return [Row("vs grpcio asyncio, 16 B, 64 in flight", _calls(ours), "not installed",
                    0.0, ">= 5x", None)]  # fmt: skip
    ratio = ours.rate / peer["rate"]
    floor = f"grpcio {peer['rate']:,.0f}/s, p50 {peer['p50'] * 1e3:.2f} ms"
    return [Row("TCP vs grpcio asyncio, 16 B, 64 in flight", _calls(ours), floor, ratio,
                ">= 5x", ratio >= 5)]  # fmt: skip


async def proxy_hop(seconds: float) -> list[Row]:
    name = "bench-proxy"
    service = trimicro.Service("bench", registry=f"memory://{name}", transport="tcp://")

    @service.endpoint("Bench.Echo")
    async def echo(req: bytes) -> bytes:
        return req

    proxy = trimicro.Service("trimicro.proxy", registry=f"memory://{name}", transport="tcp://")
    proxy.forward()
    async with service.run(), proxy.run() as running:
        results = []
        for via in (None, f"tcp://{running.address}"):
            async with trimicro.open_client(
                registry=f"memory://{name}", transport="tcp://", proxy=via
            ) as client:

                async def call() -> None:
                    await client.call("bench", "Bench.Echo", SMALL)

                await drive(call, 64, min(0.3, seconds))
                results.append(await drive(call, 64, seconds))
    direct, hop = results
    return [Row("one proxy hop (TCP, 16 B, 64 in flight)", _calls(hop), f"direct {_calls(direct)}",
                hop.rate / direct.rate, "")]  # fmt: skip


async def gateway(seconds: float) -> list[Row]:
    async with (
        gateway_bench._echo_service().run(),
        open_gateway(
            address="127.0.0.1:0", registry=gateway_bench.REGISTRY, transport="tcp://"
        ) as running,
    ):
        host, _, port = running.address.rpartition(":")
        direct, raw, _ = await gateway_bench._case(32, seconds, host, int(port))
    return [
        Row("API gateway POST /rpc (TCP backend, 32 in flight)", _calls(raw),
            f"direct call {_calls(direct)}", raw.rate / direct.rate, "")
    ]  # fmt: skip


async def pubsub(messages: int = 3000) -> list[Row]:
    _, delivered = await pubsub_run("direct://", "memory://bench-rd", "tcp://", messages)
    floor = await _rpc_floor("memory://bench-rf", "tcp://", messages)
    return [Row("publish/subscribe (direct broker, TCP): delivered/s", f"{delivered:,.0f}/s",
                f"unary calls {floor:,.0f}/s", delivered / floor, "")]  # fmt: skip


async def tunnel(rounds: int = 3) -> list[Row]:
    runs: dict[str, list[tuple[float, float, float]]] = {"direct": [], "tunnel": []}
    for _ in range(rounds):
        runs["direct"].append(await tunnel_bench.measure(tunnel_bench.direct, 300, 16384))
        runs["tunnel"].append(await tunnel_bench.measure(tunnel_bench.tunnelled, 300, 16384))
    d, t = ([statistics.median(c) for c in zip(*runs[k], strict=True)] for k in runs)
    return [
        Row(
            "tunnel session: round trip",
            f"{t[0] * 1e6:.0f} us",
            f"direct QUIC {d[0] * 1e6:.0f} us",
            d[0] / t[0],
            ">= 0.7x",
            d[0] / t[0] >= 0.7,
        ),
        Row(
            "tunnel session: 100 B messages/s",
            f"{t[1]:,.0f}/s",
            f"direct QUIC {d[1]:,.0f}/s",
            t[1] / d[1],
            ">= 0.7x",
            t[1] / d[1] >= 0.7,
        ),
        Row(
            "tunnel session: 16 KiB messages/s",
            f"{t[2]:,.0f}/s",
            f"direct QUIC {d[2]:,.0f}/s",
            t[2] / d[2],
            ">= 0.7x",
            t[2] / d[2] >= 0.7,
        ),
    ]


def _markdown(rows: list[Row], seconds: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# trimicro benchmark report",
        "",
        f"trimicro {trimicro.__version__}, {now}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, {seconds:g} s per case; both sides of every case in one "
        "process on loopback. `python -m bench.report` regenerates this file.",
        "",
        "| case | trimicro | floor / peer | ratio | target | |",
        "|---|---|---|---:|---|---|",
    ]
    for row in rows:
        verdict = "" if row.met is None else ("MET" if row.met else "MISSED")
        lines.append(f"| {row.case} | {row.ours} | {row.floor} | {row.ratio:.2f}x | "
                     f"{row.target} | {verdict} |")  # fmt: skip
    missed = [r.case for r in rows if r.met is False]
    lines += ["", f"{len(missed)} target(s) missed." if missed else "Every target met."]
    return "\n".join(lines) + "\n"


def _plot(rows: list[Row], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in rows if r.ratio > 0]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(shown) + 1.5))
    colors = ["#999" if r.met is None else ("#2a7" if r.met else "#d43") for r in shown]
    ax.barh([r.case for r in shown], [r.ratio for r in shown], color=colors)
    ax.axvline(1.0, color="#333", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the floor or peer (green: target met, red: missed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


async def main(seconds: float) -> None:
    rows = await unary(seconds)
    rows += await versus_grpc(seconds)
    rows += await proxy_hop(seconds)
    rows += await gateway(seconds)
    rows += await pubsub()
    rows += await tunnel()
    RESULTS.mkdir(exist_ok=True)
    report = _markdown(rows, seconds)
    (RESULTS / "report.md").write_text(report)
    plotted = _plot(rows, RESULTS / "report.png")
    print(report)
    print(f"wrote {RESULTS / 'report.md'}" + (" and report.png" if plotted else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each case")
    trio.run(main, parser.parse_args().seconds)
