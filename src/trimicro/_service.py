"""The facade: `Service`, `run` and `open_client` wire rpc, registry and transport together.

Leaving `async with service.run()` shuts down in a fixed order, each step structural:
leave subscriptions and handle what is queued → stop re-registering → deregister → stop
accepting calls (new ones get 503, nothing runs) → drain in-flight handlers within what is left
of `drain_timeout` → cancel what is left → close the listener and connections.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from ._config import (
    resolve_address,
    resolve_broker,
    resolve_proxy,
    resolve_registry,
    resolve_transport,
)
from ._debug import debug_handlers
from ._subscribers import Subscriber, Subscribers, subscriber_from_function
from .broker import Broker, open_broker
from .codec import schema_of
from .nursery import DrainResult, open_owned_nursery
from .registry import (
    Endpoint,
    Node,
    ServiceRecord,
    keep_registered,
    open_registry,
    open_service_cache,
)
from .rpc import PROTOCOL_VERSION, Client, Handler, RpcServer, TransportFor, handler_from_function
from .rpc._context import current_client
from .rpc._forward import PUBLISH_ENDPOINT, Forwarder, PublishRequest, Routes
from .rpc._handler import endpoint_name
from .rpc._metrics import Metrics
from .rpc._selector import Selector
from .rpc._server import Fallback
from .rpc._wrappers import Wrapper
from .session import Transport, load_transport

__all__ = ["RunningService", "Service", "open_client", "run"]

log = logging.getLogger("trimicro.service")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: Bound on deregistration during shutdown: a dead registry must not hold the exit hostage.
DEREGISTER_TIMEOUT = 5.0


@attrs.frozen
class RunningService:
    """What `service.run()` yields: where the service listens and how it is registered."""

    service: Service
    node: Node
    record: ServiceRecord
    client: Client
    server: RpcServer

    @property
    def address(self) -> str:
        return self.node.address


class Service:
    """A named, versioned service: declare endpoints, then `async with service.run()`.

    Example::

        service = trimicro.Service("greeter", version="1.0.0")

        @service.endpoint("Say.Hello")
        async def hello(req: HelloRequest) -> HelloResponse:
            return HelloResponse(msg=f"Hello {req.name}")
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "latest",
        metadata: dict[str, str] | None = None,
        address: str | None = None,
        registry: str | None = None,
        transport: str | None = None,
        broker: str | None = None,
        register_ttl: float = 60.0,
        register_interval: float = 30.0,
        drain_timeout: float = 30.0,
        max_concurrency: int = 1024,
        wrappers: Sequence[Wrapper] = (),
        client_wrappers: Sequence[Wrapper] = (),
        selector: Selector | None = None,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        proxy: str | None = None,
        node_metadata: Mapping[str, str] | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"service name {name!r} must be non-empty and without spaces")
        self.name = name
        self.version = version
        self.metadata = dict(metadata or {})
        self.address = address
        self.registry = registry
        self.transport = transport
        self.broker = broker
        self.subscribers: list[Subscriber] = []
        self.register_ttl = register_ttl
        self.register_interval = register_interval
        self.drain_timeout = drain_timeout
        self.max_concurrency = max_concurrency
        self.rng = rng or random.Random()
        self.wrappers = list(wrappers)
        self.client_wrappers = list(client_wrappers)
        self.selector = selector
        self.metrics = metrics
        self.handlers: dict[str, Handler] = {}
        self.last_drain: DrainResult | None = None
        self.proxy = proxy
        #: Published with this process's node (beside the transport's own facts).
        self.node_metadata = dict(node_metadata or {})
        #: Transports the client may use besides the service's own, by scheme.
        self.transports = dict(transports or {})
        self._routes: Routes | None = None
        self._forwarding = False
        self._fallback: Fallback | None = None

    def fallback(self, fn: Fallback) -> Fallback:
        """Decorate `async def f(endpoint, request)` to answer unary calls of endpoints not
        declared here (a sidecar passes them to its app); `request` is plain data."""
        self._fallback = fn
        return fn

    def forward(
        self,
        routes: Routes | None = None,
        *,
        publish: Callable[[PublishRequest], Awaitable[None]] | None = None,
    ) -> None:
        """Make this service a proxy: requests naming another service are forwarded (raw) to
        `routes(service)` in order, or to the service's nodes in the registry; messages
        clients publish through it (`Proxy.Publish`) go to `publish`, by default this
        service's broker.

        A forwarding service sends its own calls directly, never through `TRIMICRO_PROXY`.
        """
        self._forwarding = True
        self._routes = routes
        if PUBLISH_ENDPOINT in self.handlers:
            del self.handlers[PUBLISH_ENDPOINT]

        async def publish_through(req: PublishRequest) -> None:
            if publish is not None:
                await publish(req)
            else:
                await current_client().publish_here(req)

        self.endpoint(PUBLISH_ENDPOINT)(publish_through)

    # -- declaring endpoints ---------------------------------------------------------------

    def _add(self, handler: Handler) -> None:
        if handler.name in self.handlers:
            raise ValueError(f"endpoint {handler.name!r} is already defined on {self.name}")
        self.handlers[handler.name] = handler

    def endpoint(self, name: str, *, idempotent: bool = False) -> Callable[[F], F]:
        """Decorate `async def f(request) -> response` as unary endpoint `name`."""

        def register(fn: F) -> F:
            self._add(handler_from_function(name, fn, idempotent=idempotent))
            return fn

        return register

    def stream_endpoint(self, name: str, *, idempotent: bool = False) -> Callable[[F], F]:
        """Decorate `async def f(request, stream)` as streaming endpoint `name`."""

        def register(fn: F) -> F:
            self._add(handler_from_function(name, fn, stream=True, idempotent=idempotent))
            return fn

        return register

    def subscribe(self, topic: str, *, queue: str | None = None) -> Callable[[F], F]:
        """Decorate `async def f(message)` to receive messages published to `topic`.

        Subscribers sharing a `queue` name (across all nodes) share the messages; without a
        queue every subscriber gets each message. `trimicro.current_message()` tells the
        topic and metadata.
        """

        def register(fn: F) -> F:
            self.subscribers.append(subscriber_from_function(topic, fn, queue))
            return fn

        return register

    def handle(self, obj: object, *, name: str | None = None) -> None:
        """Register each public async method of `obj` as `ClassName.Method`.

        A method whose signature is `(self, request, stream)` becomes a streaming endpoint.
        """
        cls_name = name or type(obj).__name__
        for attr in dir(obj):
            method = getattr(obj, attr)
            if attr.startswith("_") or not callable(method):
                continue
            if not _is_async(method):
                continue
            stream = _parameter_count(method) == 2
            handler = handler_from_function(endpoint_name(cls_name, attr), method, stream=stream)
            self._add(handler)

    # -- running ---------------------------------------------------------------------------

    def _record(self, node: Node) -> ServiceRecord:
        endpoints = [
            Endpoint(
                name=h.name,
                request=schema_of(h.request_type),
                response=schema_of(h.response_type),
                metadata=_endpoint_metadata(h),
            )
            for h in sorted(self._all_handlers().values(), key=lambda h: h.name)
        ]
        return ServiceRecord(self.name, self.version, self.metadata, endpoints, (node,))

    def _all_handlers(self) -> dict[str, Handler]:
        return {**debug_handlers(self), **self.handlers}

    def _node_id(self) -> str:
        return f"{self.name}-{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    @asynccontextmanager
    async def run(self) -> AsyncIterator[RunningService]:
        """Register and serve until the block exits; then drain subscribers, deregister,
        drain calls and close."""
        registry_url = resolve_registry(self.registry)
        broker_url = resolve_broker(self.broker)
        transport = load_transport(resolve_transport(self.transport))
        address = resolve_address(self.address)
        proxy = None if self._forwarding else resolve_proxy(self.proxy)
        async with (
            open_registry(registry_url) as registry,
            open_service_cache(registry) as cache,
            _open_broker_for(broker_url, registry, transport, address, self.rng) as broker,
            open_owned_nursery() as nursery,
        ):
            client = Client(
                nursery, cache, TransportFor(transport, self.transports), rng=self.rng,
                broker=broker, selector=self.selector, wrappers=self.client_wrappers, proxy=proxy,
            )  # fmt: skip
            server = RpcServer(
                self.name,
                self._all_handlers(),
                client=client,
                max_concurrency=self.max_concurrency,
                wrappers=self.wrappers,
                forwarder=Forwarder(client, self._routes) if self._forwarding else None,
                fallback=self._fallback,
            )
            self._client = client
            self._started = trio.current_time()
            self._server = server
            serve_scope = trio.CancelScope()
            bound = await nursery.start(_serve_in, serve_scope, transport, server, address)
            node = Node(self._node_id(), bound, self._node_metadata(transport))
            record = self._record(node)
            subscribers = Subscribers(self.subscribers, broker, client, self.wrappers)
            self._subscribers = subscribers
            await nursery.start(subscribers.run)
            register_scope = trio.CancelScope()
            await nursery.start(
                _keep_registered_in,
                register_scope,
                registry,
                record,
                self.register_ttl,
                self.register_interval,
            )
            running = RunningService(self, node, record, client, server)
            try:
                yield running
            finally:
                with trio.CancelScope(shield=True):
                    await self._shut_down(registry, record, register_scope, serve_scope)
                    await client.aclose()
                nursery.cancel_scope.cancel()

    async def _shut_down(
        self,
        registry: Any,
        record: ServiceRecord,
        register_scope: trio.CancelScope,
        serve_scope: trio.CancelScope,
    ) -> None:
        """The shutdown order, each step structural (see the module docstring)."""
        started = trio.current_time()
        await self._subscribers.drain(self.drain_timeout)
        register_scope.cancel()
        with trio.move_on_after(DEREGISTER_TIMEOUT):
            await registry.deregister(record)
        budget = max(0.0, self.drain_timeout - (trio.current_time() - started))
        self.last_drain = await self._server.in_flight.drain(budget)
        await self._server.go_away()
        serve_scope.cancel()

    def _node_metadata(self, transport: Any) -> dict[str, str]:
        # A transport may add its own facts, e.g. QUIC's certificate fingerprint (the pin).
        extra: dict[str, str] = getattr(transport, "node_metadata", dict)()
        return {
            **self.node_metadata,
            **extra,
            "transport": transport.scheme,
            "protocol": str(PROTOCOL_VERSION),
        }

    def statistics(self) -> dict[str, Any]:
        """`Debug.Stats`: counters of the running service."""
        from ._debug import service_stats

        return service_stats(self)


async def _serve_in(
    scope: trio.CancelScope,
    transport: Any,
    server: RpcServer,
    address: str,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await transport.serve(server.serve_connection, address, task_status=task_status)


async def _keep_registered_in(
    scope: trio.CancelScope,
    registry: Any,
    record: ServiceRecord,
    ttl: float,
    interval: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await keep_registered(registry, record, ttl=ttl, interval=interval, task_status=task_status)


def _endpoint_metadata(handler: Handler) -> dict[str, str]:
    metadata = dict(handler.metadata)
    if handler.stream:
        metadata["stream"] = "true"
    if handler.idempotent:
        metadata["idempotent"] = "true"
    return metadata


def _is_async(fn: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


def _parameter_count(fn: Any) -> int:
    import inspect

    return len(inspect.signature(fn).parameters)


def _open_broker_for(
    url: str, registry: Any, transport: Any, address: str, rng: random.Random
) -> AbstractAsyncContextManager[Broker]:
    # The direct broker listens beside the service, on the same host.
    host = address.rpartition(":")[0]
    return open_broker(url, registry=registry, transport=transport, address=f"{host}:0", rng=rng)


@asynccontextmanager
async def open_client(
    *,
    registry: str | None = None,
    transport: str | None = None,
    broker: str | None = None,
    retries: int = 1,
    selector: Selector | None = None,
    wrappers: Sequence[Wrapper] = (),
    rng: random.Random | None = None,
    proxy: str | None = None,
) -> AsyncIterator[Client]:
    """A client with its own registry connection, cache and connection pool.

    Example::

        async with trimicro.open_client() as client:
            reply = await client.call("greeter", "Say.Hello", {"name": "Ann"})
    """
    transport_obj = load_transport(resolve_transport(transport))
    proxy = resolve_proxy(proxy)
    rng = rng or random.Random()
    async with (
        open_registry(resolve_registry(registry)) as reg,
        open_service_cache(reg) as cache,
        _open_broker_for(resolve_broker(broker), reg, transport_obj, "127.0.0.1:0", rng) as brk,
        open_owned_nursery() as nursery,
    ):
        client = Client(
            nursery, cache, TransportFor(transport_obj), retries=retries, rng=rng, broker=brk,
            selector=selector, wrappers=wrappers, proxy=proxy,
        )  # fmt: skip
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()


def run(service: Service) -> None:
    """Serve `service` until SIGINT or SIGTERM, then deregister, drain and exit."""
    trio.run(serve_until_signal, service)


async def serve_until_signal(
    service: Service, *, on_ready: Callable[[RunningService], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM arrives (the async form of `run`)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with service.run() as running:
            log.info("%s serving on %s (pid %d)", service.name, running.address, os.getpid())
            if on_ready is not None:
                on_ready(running)
            async for signum in signals:
                log.info("%s received %s: shutting down", service.name, signal.Signals(signum).name)
                break
