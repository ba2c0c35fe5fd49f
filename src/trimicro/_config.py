"""Settings from arguments or the environment (`TRIMICRO_*`), validated at start.

A bad value fails at start with a message naming the variable, never deep inside a call.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping

from ._plugins import load_plugin
from .broker import DEFAULT_BROKER
from .registry import DEFAULT_REGISTRY
from .session import DEFAULT_TRANSPORT

__all__ = [
    "ConfigError",
    "check_environment",
    "check_host",
    "check_tls",
    "resolve_address",
    "resolve_broker",
    "resolve_namespace",
    "resolve_network_token",
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
        check = _URL_CHECKS.get((group, url.partition("://")[0]))
        if check is not None:
            check(url)
    except ValueError as exc:  # PluginError, or the plugin's own URL parser
        raise ConfigError(f"{source}: {exc}") from None
    return url


# The built-in plugins parse their URLs when opened, deep inside a command; the same parsers
# run here, at start, so a bad option or address is reported naming the variable or flag.


def _check_mdns_url(url: str) -> None:
    from .registry._mdns import parse_mdns_url

    parse_mdns_url(url)


def _check_etcd_url(url: str) -> None:
    from .registry._etcd import _parse

    endpoints, _prefix = _parse(url)
    for endpoint in endpoints:
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not check_host(host) or not _is_port(port):
            raise ValueError(f"registry URL {url!r}: {endpoint!r} is not HOST:PORT")


def _check_nats_url(url: str) -> None:
    from .broker._nats import _parse_servers

    _parse_servers(url)


def _check_quic_url(url: str) -> None:
    from .session._quic_transport import QuicOptions

    QuicOptions.from_url(url)


_URL_CHECKS: dict[tuple[str, str], Callable[[str], None]] = {
    ("trimicro.registries", "mdns"): _check_mdns_url,
    ("trimicro.registries", "etcd"): _check_etcd_url,
    ("trimicro.brokers", "nats"): _check_nats_url,
    ("trimicro.transports", "quic"): _check_quic_url,
}


def _is_port(text: str) -> bool:
    return text.isdigit() and int(text) <= 65535


def check_host(host: str) -> bool:
    """Whether `host` can be the host of `HOST:PORT`: a name or IPv4 address (no spaces, no
    URL punctuation), a bracketed IPv6 literal, or empty (any interface)."""
    if host.startswith("[") or host.endswith("]") or ":" in host:
        # Only a bracketed IPv6 literal may contain colons.
        try:
            ipaddress.IPv6Address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            return False
        return host.startswith("[") and host.endswith("]")
    return not any(c.isspace() or c in "/?#@" for c in host)


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
    host, sep, port = address.rpartition(":")
    if not sep or not _is_port(port) or not check_host(host):
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


_NAMESPACE = re.compile(r"[^\s/.]+(\.[^\s/.]+)*")


def resolve_namespace(value: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The gateway's namespace: `value`, else `TRIMICRO_NAMESPACE`, else None (the handler's
    default). `''` (as a value) turns the prefix off."""
    if value is None and not env.get("TRIMICRO_NAMESPACE"):
        return None
    namespace, source = _pick(value, "TRIMICRO_NAMESPACE", "", env)
    if namespace and not _NAMESPACE.fullmatch(namespace):
        raise ConfigError(
            f"namespace ({source}): {namespace!r} is not dot-separated names without spaces "
            "or slashes, e.g. trimicro.api"
        )
    return namespace


def resolve_network_token(
    value: str | None = None, env: Mapping[str, str] = os.environ
) -> str | None:
    """The network's shared secret: `value`, else `TRIMICRO_NETWORK_TOKEN`, else None."""
    token, source = _pick(value, "TRIMICRO_NETWORK_TOKEN", "", env)
    if not token:
        return None
    try:
        token.encode()
    except UnicodeEncodeError:
        raise ConfigError(f"network token ({source}): not valid UTF-8") from None
    return token


def check_tls(env: Mapping[str, str] = os.environ) -> None:
    """`TRIMICRO_TLS_CERT`/`TRIMICRO_TLS_KEY` (set together, readable PEM) and
    `TRIMICRO_TLS_CA` (readable PEM certificates), checked before any transport is built."""
    from .session._quic_tls import IdentityError, check_ca_file, identity_from_environment

    try:
        identity_from_environment(env)
        check_ca_file(env)
    except IdentityError as exc:
        raise ConfigError(str(exc)) from None


def check_environment(env: Mapping[str, str] = os.environ) -> None:
    """Every `TRIMICRO_*` variable a process may read (DESIGN.md 3), checked at once: a bad
    value raises `ConfigError` naming the variable, whatever will use it."""
    resolve_registry(env=env)
    resolve_transport(env=env)
    resolve_broker(env=env)
    resolve_address(env=env)
    resolve_proxy(env=env)
    resolve_namespace(env=env)
    resolve_network_token(env=env)
    check_tls(env)
