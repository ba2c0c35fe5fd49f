"""OpenTelemetry tracing as a wrapper: a span per call, the context carried in metadata.

The W3C `traceparent`/`tracestate` headers travel in call and message metadata, so a trace
crosses every hop (and any other OpenTelemetry-instrumented peer understands it). OpenTelemetry
keeps its context in contextvars, which trio copies into each task: spans nest correctly.

    tracer = opentelemetry.trace.get_tracer_provider()
    service = trimicro.Service("api", wrappers=[tracing()], client_wrappers=[tracing()])
"""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace

from . import errors
from ._wrappers import Proceed, WrappedCall, Wrapper

__all__ = ["tracing"]

_KINDS = {
    "client": trace.SpanKind.CLIENT,
    "handler": trace.SpanKind.SERVER,
    "subscriber": trace.SpanKind.CONSUMER,
}


def tracing(tracer_provider: trace.TracerProvider | None = None) -> Wrapper:
    """A wrapper that traces client calls, handlers and subscribers."""
    tracer = trace.get_tracer("trimicro", tracer_provider=tracer_provider)

    async def wrapper(call: WrappedCall, proceed: Proceed) -> Any:
        name = f"{call.service} {call.endpoint}".strip()
        parent = None if call.kind == "client" else propagate.extract(dict(call.metadata))
        attributes = {"rpc.system": "trimicro", "rpc.service": call.service,
                      "rpc.method": call.endpoint}  # fmt: skip
        with tracer.start_as_current_span(
            name, context=parent, kind=_KINDS[call.kind], attributes=attributes
        ) as span:
            if call.kind == "client":
                propagate.inject(call.metadata)  # the callee continues this trace
            try:
                return await proceed()
            except errors.Error as exc:
                span.set_attribute("rpc.trimicro.error_code", exc.code)
                if exc.code >= 500:
                    span.set_status(trace.StatusCode.ERROR, exc.detail)
                raise

    return wrapper
