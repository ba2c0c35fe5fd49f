"""Resolvers: where a network node finds peers to dial, re-run every `RESOLVE_INTERVAL`.

`static` (the addresses given), `dns` (each name's SRV `_network._udp.NAME` records, else its
A records, with port 8085 unless given; dnspython on trio), `http` (a JSON document
`{"nodes": [{"address": ..., "priority": ...}]}`, lowest priority first) and `registry` (the
link addresses other nodes of the network service publish in the registry).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

import httpx

from ..registry import Registry, RegistryError

__all__ = [
    "DEFAULT_PORT",
    "RESOLVE_INTERVAL",
    "ResolveError",
    "Resolver",
    "dns_resolver",
    "http_resolver",
    "registry_resolver",
    "static_resolver",
]

DEFAULT_PORT = 8085
RESOLVE_INTERVAL = 60.0
#: The node metadata key carrying a network node's link address.
LINK_ADDRESS = "link_address"

Resolver = Callable[[], Awaitable[list[str]]]


class ResolveError(Exception):
    """Peers could not be resolved this time (the node keeps the ones it has)."""


def static_resolver(addresses: Sequence[str]) -> Resolver:
    found = list(dict.fromkeys(addresses))

    async def resolve() -> list[str]:
        return list(found)

    return resolve


def _split(name: str) -> tuple[str, int]:
    host, sep, port = name.rpartition(":")
    if sep and port.isdigit():
        return host or "localhost", int(port)
    return name or "localhost", DEFAULT_PORT


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def dns_resolver(
    names: Sequence[str], *, nameserver: str | None = None, nameserver_port: int = 53
) -> Resolver:
    """SRV `_network._udp.NAME`, else A records of NAME (an IP literal is used as is)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver]
        resolver.port = nameserver_port
    resolver.lifetime = 5.0

    async def records(qname: str, rdtype: str) -> list[object]:
        try:
            return list(await resolver.resolve(qname, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise ResolveError(f"dns: {qname} {rdtype}: {exc}") from None

    async def resolve() -> list[str]:
        found: list[str] = []
        for name in names:
            host, port = _split(name)
            if _is_ip(host) or host == "localhost":
                found.append(f"{host}:{port}")
                continue
            srv = await records(f"_network._udp.{host}", "SRV")
            if srv:
                ordered = sorted(srv, key=lambda r: (r.priority, -r.weight))  # type: ignore[attr-defined]
                found += [f"{str(r.target).rstrip('.')}:{r.port}" for r in ordered]  # type: ignore[attr-defined]
                continue
            found += [f"{r.address}:{port}" for r in await records(host, "A")]  # type: ignore[attr-defined]
        return list(dict.fromkeys(found))

    return resolve


def http_resolver(url: str, *, timeout: float = 5.0) -> Resolver:
    """GET `url`; the nodes of its JSON, lowest priority first."""

    async def resolve() -> list[str]:
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise ResolveError(f"http: {url}: {exc}") from None
        if response.status_code != 200:
            raise ResolveError(f"http: {url}: status {response.status_code}")
        try:
            nodes = response.json()["nodes"]
            pairs = [(int(n.get("priority", 0)), str(n["address"])) for n in nodes]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ResolveError(
                f'http: {url}: expected {{"nodes": [{{"address": ..., "priority": ...}}]}}'
            ) from None
        return list(dict.fromkeys(address for _, address in sorted(pairs)))

    return resolve


def registry_resolver(registry: Registry, service: str) -> Resolver:
    """The link addresses the nodes of `service` (the network service) publish."""

    async def resolve() -> list[str]:
        try:
            records = await registry.get_service(service)
        except RegistryError as exc:
            raise ResolveError(f"registry: {exc}") from None
        addresses = [
            node.metadata[LINK_ADDRESS]
            for record in records
            for node in record.nodes
            if node.metadata.get(LINK_ADDRESS)
        ]
        return list(dict.fromkeys(addresses))

    return resolve
