"""Tracing carries one trace across hops; metrics count and expose per endpoint."""

from __future__ import annotations

import httpx
import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import trimicro
from trimicro import errors
from trimicro.testing import open_cluster
from trimicro.wrappers import Metrics, serve_metrics, tracing


async def test_one_trace_spans_client_front_and_back() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = [tracing(provider)]
    front = trimicro.Service("front", wrappers=traced, client_wrappers=traced)
    back = trimicro.Service("back", wrappers=traced)

    @front.endpoint("Front.Go")
    async def go(req: None) -> str:
        reply: str = await trimicro.current_client().call("back", "Back.Go")
        return reply

    @back.endpoint("Back.Go")
    async def back_go(req: None) -> str:
        return "done"

    async with open_cluster(front, back) as cluster:
        cluster.client.wrappers = traced
        assert await cluster.client.call("front", "Front.Go") == "done"
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == [
        "back Back.Go", "back Back.Go", "front Front.Go", "front Front.Go"
    ]  # fmt: skip
    assert len({s.context.trace_id for s in spans}) == 1
    by_parent = {s.context.span_id: s for s in spans}
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1 and all(s.parent.span_id in by_parent for s in spans if s.parent)


async def test_metrics_count_and_expose() -> None:
    metrics = Metrics()
    service = trimicro.Service("m", wrappers=[metrics.wrapper], metrics=metrics)

    @service.endpoint("M.Ok")
    async def ok(req: None) -> int:
        return 1

    @service.endpoint("M.Bad")
    async def bad(req: None) -> int:
        raise errors.bad_request("no")

    async with open_cluster(service) as cluster:
        for _ in range(3):
            await cluster.client.call("m", "M.Ok")
        with pytest.raises(errors.Error):
            await cluster.client.call("m", "M.Bad")
        stats = await cluster.client.call("m", "Debug.Stats")
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve_metrics, metrics, "127.0.0.1:0")
            async with httpx.AsyncClient() as http:
                response = await http.get(f"http://{address}/metrics")
                missing = await http.get(f"http://{address}/other")
            nursery.cancel_scope.cancel()
    summary = stats["metrics"]
    assert summary["trimicro_requests_total{endpoint=M.Ok,kind=handler,service=m}"] == 3
    assert summary["trimicro_errors_total{code=400,endpoint=M.Bad,kind=handler,service=m}"] == 1
    assert response.status_code == 200 and missing.status_code == 404
    assert 'trimicro_latency_seconds_count{endpoint="M.Ok",kind="handler",service="m"} 3.0' in (
        response.text
    )
