"""The path rules, table-driven (docs/gateway.md has the same table)."""

from __future__ import annotations

import pytest

from trimicro.gateway import Route, proxy_route, rpc_route, web_route
from trimicro.gateway._handlers import qualified

RPC_ROUTES = [
    # go-micro's api/resolver/micro test table
    ("/foo/bar", "foo", "Foo.Bar"),
    ("/foo/foo/bar", "foo", "Foo.Bar"),
    ("/foo/bar/baz", "foo", "Bar.Baz"),
    ("/foo/bar/baz-xyz", "foo", "Bar.BazXyz"),
    ("/foo/bar/baz/cat", "foo.bar", "Baz.Cat"),
    ("/foo/bar/baz/cat/car", "foo.bar.baz", "Cat.Car"),
    ("/foo/fooBar/bazCat", "foo", "FooBar.BazCat"),
    ("/v1/foo/bar", "v1.foo", "Foo.Bar"),
    ("/v1/foo/bar/baz", "v1.foo", "Bar.Baz"),
    ("/v1/foo/bar/baz-xyz", "v1.foo", "Bar.BazXyz"),
    # the seed and DESIGN.md
    ("/greeter/say/hello", "greeter", "Say.Hello"),
    ("/greeter/hello", "greeter", "Greeter.Hello"),
    ("/customer/orders", "customer", "Customer.Orders"),
    ("/v1/greeter/say/hello", "v1.greeter", "Say.Hello"),
    ("/v2/greeter/hello", "v2.greeter", "Greeter.Hello"),
    # ours: one segment, snake_case, path cleaning
    ("/greeter", "greeter", "Greeter.Call"),
    ("/v1/greeter", "v1.greeter", "Greeter.Call"),
    ("/v1", "v1", "V1.Call"),
    ("/greeter/say/say_hello", "greeter", "Say.SayHello"),
    ("/greeter/say/hello/", "greeter", "Say.Hello"),
    ("//greeter//say/./hello", "greeter", "Say.Hello"),
]


@pytest.mark.parametrize(("path", "service", "endpoint"), RPC_ROUTES)
def test_rpc_route(path: str, service: str, endpoint: str) -> None:
    assert rpc_route(path) == Route(service, endpoint)


@pytest.mark.parametrize("path", ["/", "", "/greeter/../etc", "/greeter/say/he.llo", "/a/b c"])
def test_rpc_route_refuses(path: str) -> None:
    assert rpc_route(path) is None


PROXY_ROUTES = [
    ("/foo", "foo"),
    ("/foo/bar/baz", "foo"),
    ("/foo-bar/baz", "foo-bar"),
    ("/v1/foo/bar", "v1.foo"),
    ("/v1/foo", "v1.foo"),
    ("/v1", "v1"),
    ("/", None),
    ("/foo_bar/x", None),
    ("/-foo/x", None),
]


@pytest.mark.parametrize(("path", "service"), PROXY_ROUTES)
def test_proxy_route(path: str, service: str | None) -> None:
    assert proxy_route(path) == service


WEB_ROUTES = [
    ("/dash", ("dash", "/")),
    ("/dash/", ("dash", "/")),
    ("/dash/static/app.js", ("dash", "/static/app.js")),
    ("/my-app/ws", ("my-app", "/ws")),
    ("/", None),
    ("/bad.name/x", None),
]


@pytest.mark.parametrize(("path", "found"), WEB_ROUTES)
def test_web_route(path: str, found: tuple[str, str] | None) -> None:
    assert web_route(path) == found


def test_namespace_prefix() -> None:
    assert qualified("trimicro.api", "greeter") == "trimicro.api.greeter"
    assert qualified("", "greeter") == "greeter"
