"""Publish/subscribe: `direct://` (default, no server), `memory://NAME`, `nats://HOST:PORT`,
and `TunnelBroker(tunnel)` over a running tunnel (in code: it has no URL form).

Brokers are plugins by URL scheme (entry points `trimicro.brokers`); each factory takes the
URL and the registry/transport/rng it may need, and returns an async context manager.
"""

from __future__ import annotations

import random
from contextlib import AbstractAsyncContextManager

from .._plugins import load_plugin
from ..registry import Registry
from ..session import Transport
from ._base import Broker as Broker
from ._base import BrokerError as BrokerError
from ._base import BrokerMessage as BrokerMessage
from ._base import Subscription as Subscription
from ._context import MessageContext as MessageContext
from ._context import current_message as current_message
from ._tunnel import TunnelBroker as TunnelBroker

__all__ = [
    "DEFAULT_BROKER",
    "Broker",
    "BrokerError",
    "BrokerMessage",
    "MessageContext",
    "Subscription",
    "TunnelBroker",
    "current_message",
    "open_broker",
]

DEFAULT_BROKER = "direct://"


def open_broker(
    url: str,
    *,
    registry: Registry,
    transport: Transport,
    address: str = "127.0.0.1:0",
    rng: random.Random | None = None,
) -> AbstractAsyncContextManager[Broker]:
    """Open the broker plugin for `url`'s scheme."""
    factory = load_plugin("trimicro.brokers", url)
    manager: AbstractAsyncContextManager[Broker] = factory(
        url, registry=registry, transport=transport, address=address, rng=rng
    )
    return manager
