"""Service discovery: the model, the `Registry` interface, plugins by URL, and a cache.

async with open_registry("memory://site-a") as registry:
    await registry.register(ServiceRecord("greeter", nodes=[Node("g-1", "127.0.0.1:9000")]))
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from .._plugins import load_plugin
from ._base import Registry as Registry
from ._base import RegistryError as RegistryError
from ._base import Watcher as Watcher
from ._cache import ServiceCache as ServiceCache
from ._cache import open_service_cache as open_service_cache
from ._keepalive import keep_registered as keep_registered
from ._model import Endpoint as Endpoint
from ._model import Node as Node
from ._model import ServiceRecord as ServiceRecord
from ._model import WatchEvent as WatchEvent

__all__ = [
    "DEFAULT_REGISTRY",
    "Endpoint",
    "Node",
    "Registry",
    "RegistryError",
    "ServiceCache",
    "ServiceRecord",
    "WatchEvent",
    "Watcher",
    "keep_registered",
    "open_registry",
    "open_service_cache",
]

DEFAULT_REGISTRY = "mdns://"


def open_registry(url: str = DEFAULT_REGISTRY) -> AbstractAsyncContextManager[Registry]:
    """Open the registry plugin for `url`'s scheme (`memory://NAME`, `mdns://`, ...)."""
    factory = load_plugin("trimicro.registries", url)
    manager: AbstractAsyncContextManager[Registry] = factory(url)
    return manager
