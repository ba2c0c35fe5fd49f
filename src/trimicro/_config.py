"""Settings from arguments or the environment (`TRIMICRO_*`), validated at start.

A bad value fails at start with a message naming the variable, never deep inside a call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._plugins import PluginError, load_plugin
from .broker import DEFAULT_BROKER
from .registry import DEFAULT_REGISTRY
from .session import DEFAULT_TRANSPORT

__all__ = [
    "ConfigError",
    "resolve_address",
    "resolve_broker",
    "resolve_proxy",
    "resolve_registry",
    "resolve_transport",
]


class ConfigError(ValueError):
    """A setting (argument or environment variable) is invalid; the message names it."""


def _pick(
    value: str | None, variable: str, default: str, env: Mapping[str, str]
) -> tuple[str, str]:
    if value is not None:
        return value, "argument"
    if env.get(variable):
        return env[variable], variable
    return default, "default"


def _check_plugin(group: str, url: str, source: str) -> str:
    try:
        load_plugin(group, url)
    except PluginError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return url


def resolve_registry(value: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The registry URL: `value`, else `TRIMICRO_REGISTRY`, else mDNS."""
    url, source = _pick(value, "TRIMICRO_REGISTRY", DEFAULT_REGISTRY, env)
    return _check_plugin("trimicro.registries", url, f"registry ({source})")


def resolve_transport(value: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The transport URL: `value`, else `TRIMICRO_TRANSPORT`, else the default."""
    url, source = _pick(value, "TRIMICRO_TRANSPORT", DEFAULT_TRANSPORT, env)
    if "://" not in url:
        url = f"{url}://"  # `TRIMICRO_TRANSPORT=tcp` is what people type
    return _check_plugin("trimicro.transports", url, f"transport ({source})")


def resolve_broker(value: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The broker URL: `value`, else `TRIMICRO_BROKER`, else `direct://`."""
    url, source = _pick(value, "TRIMICRO_BROKER", DEFAULT_BROKER, env)
    return _check_plugin("trimicro.brokers", url, f"broker ({source})")


def resolve_address(value: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The listen address: `value`, else `TRIMICRO_ADDRESS`, else any loopback port."""
    address, source = _pick(value, "TRIMICRO_ADDRESS", "127.0.0.1:0", env)
    _host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"address ({source}): {address!r} is not HOST:PORT")
    return address


def resolve_proxy(value: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """Where every call goes when set: `value`, else `TRIMICRO_PROXY`, else None (direct).

    An address (`host:port`, maybe `quic://host:port?cert_sha256=HEX`) or the name of a
    proxy/network service in the registry (e.g. `trimicro.network`).
    """
    if value is None and not env.get("TRIMICRO_PROXY"):
        return None
    proxy, source = _pick(value, "TRIMICRO_PROXY", "", env)
    source = f"proxy ({source})"
    if not proxy or any(c.isspace() for c in proxy):
        raise ConfigError(f"{source}: {proxy!r} is neither HOST:PORT nor a service name")
    bare = proxy.partition("://")[2] if "://" in proxy else proxy
    host, sep, port = bare.partition("?")[0].rpartition(":")
    if sep and (not host or not port.isdigit() or int(port) > 65535):
        raise ConfigError(f"{source}: {proxy!r} is not HOST:PORT")
    return proxy
