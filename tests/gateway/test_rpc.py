"""`POST /rpc` and the `rpc` handler over real HTTP: replies, errors with their status, request
shapes, metadata, and 100 concurrent clients."""

from __future__ import annotations

import httpx
import pytest
import trio

from .conftest import http_client, make_greeter, running_gateway


async def test_rpc_endpoint_calls_a_service() -> None:
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "John"}}
        response = await http.post("/rpc", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"msg": "Hello John"}


async def test_rpc_endpoint_accepts_go_micro_form_posts() -> None:
    form = {"service": "greeter", "method": "Say.Hello", "request": '{"name": "Form"}'}
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        response = await http.post("/rpc", data=form)
    assert response.json() == {"msg": "Hello Form"}


async def test_remote_error_keeps_its_status_and_json() -> None:
    body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": ""}}
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        response = await http.post("/rpc", json=body)
        missing = await http.post("/rpc", json={**body, "endpoint": "Say.Nothing"})
    assert response.status_code == 400
    assert response.json() == {
        "id": "greeter",
        "code": 400,
        "detail": "name must not be empty",
        "status": "Bad Request",
    }
    assert missing.status_code == 404
    assert missing.json()["detail"] == "unknown endpoint Say.Nothing"


async def test_structuring_failure_is_a_400_naming_the_field() -> None:
    body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": 5}}
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        response = await http.post("/rpc", json=body)
    assert response.status_code == 400
    assert "request.name" in response.json()["detail"]


async def test_unknown_service_in_rpc_is_503() -> None:
    body = {"service": "nobody", "endpoint": "X.Y", "request": {}}
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        response = await http.post("/rpc", json=body)
    assert response.status_code == 503
    assert response.json()["detail"] == "service nobody: no nodes found"


async def test_bad_rpc_bodies_are_400_naming_the_problem() -> None:
    cases = [
        (b'{"service": ', "invalid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'{"endpoint": "Say.Hello"}', '"service" must be a non-empty string'),
        (b'{"service": "greeter"}', '"endpoint" must be a non-empty string'),
        (b'{"service": "g", "endpoint": "A.B", "metadata": {"a": 1}}', '"metadata" must be'),
        (b'{"service": "g", "endpoint": "A.B", "service": "h"}', "duplicate key"),
    ]
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        for body, problem in cases:
            headers = {"content-type": "application/json"}
            response = await http.post("/rpc", content=body, headers=headers)
            assert response.status_code == 400, body
            assert problem in response.json()["detail"], (body, response.json())
            assert response.json()["id"] == "trimicro.gateway"
        get = await http.get("/rpc")
    assert get.status_code == 405
    assert get.headers["allow"] == "POST"


async def test_rpc_handler_maps_paths_json_and_query() -> None:
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        posted = await http.post("/greeter/say/hello", json={"name": "Path"})
        queried = await http.get("/greeter/say/hello", params={"name": "Query"})
        typed = await http.get(
            "/greeter/say/typed",
            params=[("count", "3"), ("ratio", "0.5"), ("loud", "true"), ("tags", "a")],
        )
        refused = await http.get("/greeter/say/typed", params={"count": "three"})
        unknown = await http.get("/nobody/say/hello")
        no_route = await http.get("/greeter/say/../../etc")
    assert posted.json() == {"msg": "Hello Path"}
    assert queried.json() == {"msg": "Hello Query"}
    # Query text is typed by the endpoint's published schema.
    assert typed.json() == {"count": 3, "ratio": 0.5, "loud": True, "tags": ["a"]}
    assert refused.status_code == 400
    assert "request.count" in refused.json()["detail"]
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "service nobody not found"
    assert no_route.status_code == 404


async def test_namespace_prefixes_path_services() -> None:
    services = (make_greeter("trimicro.api.greeter"),)
    async with (
        running_gateway(*services, namespace="trimicro.api") as (gateway, _),
        http_client(gateway) as http,
    ):
        response = await http.get("/greeter/say/hello", params={"name": "Ns"})
        about = await http.get("/")
    assert response.json() == {"msg": "Hello Ns"}
    assert about.json() == {"gateway": "trimicro", "handler": "rpc", "namespace": "trimicro.api"}


async def test_headers_that_matter_travel_as_metadata() -> None:
    headers = {
        "Authorization": "Bearer t0k3n",
        "X-Request-Id": "req-1",
        "X-Forwarded-For": "10.0.0.1",
        "Cookie": "secret=1",
        "Accept": "application/json",
    }
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:
        via_path = (await http.post("/greeter/say/metadata", headers=headers)).json()
        body = {"service": "greeter", "endpoint": "Say.Metadata", "metadata": {"Tenant": "a"}}
        via_rpc = (await http.post("/rpc", json=body, headers=headers)).json()
    assert via_path == {
        "Authorization": "Bearer t0k3n",
        "X-Request-Id": "req-1",
        "X-Forwarded-For": "10.0.0.1, 127.0.0.1",
    }
    assert via_rpc == {**via_path, "Tenant": "a"}


async def test_slow_calls_get_the_gateway_call_budget() -> None:
    from trimicro.gateway import HttpLimits

    limits = HttpLimits(call_timeout=0.2)
    body = {"service": "greeter", "endpoint": "Say.Sleep", "request": {"seconds": 5}}
    async with (
        running_gateway(make_greeter(), limits=limits) as (gateway, _),
        http_client(gateway) as http,
    ):
        started = trio.current_time()
        response = await http.post("/rpc", json=body)
    assert response.status_code == 408
    assert trio.current_time() - started < 2


async def test_a_hundred_concurrent_clients() -> None:
    replies: list[tuple[int, object]] = []
    async with running_gateway(make_greeter()) as (gateway, _):

        async def one_client(i: int) -> None:
            # Each its own client, so each its own connection.
            async with http_client(gateway) as http:
                body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": str(i)}}
                response = await http.post("/rpc", json=body)
                path = await http.get("/greeter/say/hello", params={"name": str(i)})
                replies.append((response.status_code, response.json()))
                replies.append((path.status_code, path.json()))

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(one_client, i)
    assert len(replies) == 200
    assert all(status == 200 for status, _ in replies)
    assert sorted(r["msg"] for _, r in replies) == sorted([f"Hello {i}" for i in range(100)] * 2)


async def test_drain_lets_requests_in_flight_finish() -> None:
    body = {"service": "greeter", "endpoint": "Say.Sleep", "request": {"seconds": 0.3}}
    replies: list[int] = []
    async with running_gateway(make_greeter()) as (gateway, _), http_client(gateway) as http:

        async def slow() -> None:
            replies.append((await http.post("/rpc", json=body)).status_code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await trio.sleep(0.1)
            await gateway.drain()
        with pytest.raises(httpx.ConnectError):
            await http.get("/")  # no longer accepting
    assert replies == [200]
