"""Prometheus metrics as a wrapper: requests, errors and latency per service and endpoint.

    metrics = Metrics()
    service = trimicro.Service("api", wrappers=[metrics.wrapper], metrics=metrics)

`Debug.Stats` then includes a `metrics` summary, and `serve_metrics(metrics, "127.0.0.1:9100")`
exposes the Prometheus text format at `/metrics`.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..session._address import parse_address
from . import errors
from ._wrappers import Proceed, WrappedCall

__all__ = ["Metrics", "serve_metrics"]

log = logging.getLogger("trimicro.rpc")

#: Latency buckets in seconds: sub-millisecond RPCs up to multi-second calls.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: A /metrics request head larger than this is refused (no slowloris, no memory growth).
MAX_REQUEST_HEAD = 8192
REQUEST_HEAD_TIMEOUT = 10.0


class Metrics:
    """Counters and a latency histogram in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("kind", "service", "endpoint")
        self.requests = Counter("trimicro_requests", "Calls seen", labels, registry=self.registry)
        self.errors = Counter(
            "trimicro_errors", "Calls that failed", (*labels, "code"), registry=self.registry
        )
        self.latency = Histogram(
            "trimicro_latency_seconds", "Call latency", labels, buckets=BUCKETS,
            registry=self.registry,
        )  # fmt: skip

    async def wrapper(self, call: WrappedCall, proceed: Proceed) -> Any:
        labels = (call.kind, call.service, call.endpoint)
        self.requests.labels(*labels).inc()
        started = trio.current_time()
        try:
            return await proceed()
        except errors.Error as exc:
            self.errors.labels(*labels, str(exc.code)).inc()
            raise
        except Exception:
            self.errors.labels(*labels, "500").inc()
            raise
        finally:
            self.latency.labels(*labels).observe(trio.current_time() - started)

    def summary(self) -> dict[str, float]:
        """Totals for `Debug.Stats`: {metric{labels}: value}."""
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def serve_metrics(
    metrics: Metrics,
    address: str = "127.0.0.1:9100",
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `GET /metrics` (Prometheus text format) until cancelled."""
    host, port = parse_address(address)
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    task_status.started(f"{bound_host}:{bound_port}")

    async def handle(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(REQUEST_HEAD_TIMEOUT):
                head = await _read_head(stream)
                await stream.send_all(_response(metrics, head))
        except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError) as exc:
            log.debug("metrics request failed: %s", exc)
        finally:
            await stream.aclose()

    await trio.serve_listeners(handle, listeners)


async def _read_head(stream: trio.SocketStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        head += chunk
        if len(head) > MAX_REQUEST_HEAD:
            raise ValueError("request head too large")
    return head


def _response(metrics: Metrics, head: bytes) -> bytes:
    request_line = head.split(b"\r\n", 1)[0].split()
    if request_line[:2] != [b"GET", b"/metrics"]:
        body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
    else:
        body, status, ctype = metrics.exposition(), b"200 OK", CONTENT_TYPE_LATEST.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + ctype
        + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        + body
    )  # fmt: skip
