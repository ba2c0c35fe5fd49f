"""`host:port` addresses, with IPv6 in brackets (`[::1]:9000`)."""

from __future__ import annotations

__all__ = ["format_address", "parse_address"]


def parse_address(address: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`"127.0.0.1:9000"` → `("127.0.0.1", 9000)`; `ValueError` naming the address."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {address!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or default_host, int(port)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
