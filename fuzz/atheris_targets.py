"""Coverage-guided fuzzing with atheris (libFuzzer), where it installs.

    python -m fuzz.atheris_targets TARGET [-runs=N] [-max_len=4096] [corpus dirs...]
    python -m fuzz.atheris_targets all -runs=100000    # every target, N inputs each

Targets: cbor, json, frames, envelope, tunnel, advert, network, nats, gateway. Each feeds
the bytes libFuzzer chooses to one decoder; the only exception allowed is that decoder's
protocol error, so anything else (a crash, a hang, a RecursionError) is a finding. The
hypothesis targets in tests/fuzz are the portable version of the same checks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from trimicro.broker._nats_proto import NatsProtocol, NatsProtocolError
    from trimicro.codec import CodecError, cbor_loads, json_loads
    from trimicro.gateway import proxy_route, rpc_route, web_route
    from trimicro.network._messages import MalformedMessage as NetworkMalformed
    from trimicro.network._messages import decode as decode_network
    from trimicro.routing import MalformedAdvert, decode_advert
    from trimicro.rpc._envelope import decode as decode_envelope
    from trimicro.session import FrameDecoder, ProtocolError
    from trimicro.session.tunnel._messages import MalformedMessage as TunnelMalformed
    from trimicro.session.tunnel._messages import decode as decode_tunnel


def _cbor(data: bytes) -> None:
    try:
        cbor_loads(data)
    except CodecError:
        pass


def _json(data: bytes) -> None:
    try:
        json_loads(data)
    except CodecError:
        pass


def _frames(data: bytes) -> None:
    decoder = FrameDecoder()
    try:
        decoder.receive_data(data)
        while decoder.next_message() is not None:
            pass
    except ProtocolError:
        pass


def _envelope(data: bytes) -> None:
    try:
        decode_envelope(cbor_loads(data))
    except (CodecError, ProtocolError):
        pass


def _tunnel(data: bytes) -> None:
    try:
        decode_tunnel(cbor_loads(data))
    except (CodecError, TunnelMalformed):
        pass


def _advert(data: bytes) -> None:
    try:
        decode_advert(data)
    except MalformedAdvert:
        pass


def _network(data: bytes) -> None:
    try:
        decode_network(data)
    except NetworkMalformed:
        pass


def _nats(data: bytes) -> None:
    protocol = NatsProtocol()
    try:
        for start in range(0, len(data), 7):  # arbitrary splits: parsing is split-proof
            protocol.receive_data(data[start : start + 7])
            while protocol.next_event() is not None:
                pass
    except NatsProtocolError:
        pass


def _gateway(data: bytes) -> None:
    path = data.decode("utf-8", "replace")
    route = rpc_route(path)
    if route is not None:
        assert route.service and "." in route.endpoint
    proxy_route(path)
    web_route(path)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "cbor": _cbor,
    "json": _json,
    "frames": _frames,
    "envelope": _envelope,
    "tunnel": _tunnel,
    "advert": _advert,
    "network": _network,
    "nats": _nats,
    "gateway": _gateway,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in [*TARGETS, "all"]:
        sys.exit(f"usage: python -m fuzz.atheris_targets {{{'|'.join(TARGETS)}|all}} [-runs=N]")
    name, rest = sys.argv[1], sys.argv[2:]
    if name == "all":  # one process per target: libFuzzer runs one target per process
        for target in TARGETS:
            command = [sys.executable, "-m", "fuzz.atheris_targets", target, *rest]
            print(f"== {target}", flush=True)
            subprocess.run(command, check=True)
        return
    atheris.Setup([sys.argv[0], *rest], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
