"""The sidecar in-process with the stand-in app as a real process: calls to the app's name
reach it, its health decides its presence in the registry, and the HTTP surface."""

from __future__ import annotations

import json

import pytest
import trio

import trimicro
from trimicro import errors
from trimicro.gateway._proxy import open_websocket
from trimicro.sidecar import open_sidecar
from trimicro.testing import open_cluster

from .conftest import (
    INTERVAL,
    AppProcess,
    eventually,
    http_client,
    make_greeter,
    nodes_of,
    registered,
    running_sidecar,
)


async def test_calls_to_the_app_name_reach_the_app(app: AppProcess) -> None:
    async with running_sidecar(app) as (sidecar, cluster):
        await registered(sidecar)
        reply = await cluster.client.call("hello", "Say.Hello", {"name": "Ann"})
        with_metadata = await cluster.client.call(
            "hello", "Say.Hello", {"name": "Bob"}, metadata={"X-User": "u1"}
        )
        with pytest.raises(errors.Error) as caught:
            await cluster.client.call("hello", "Say.Hello", {"name": ""})
        [node] = await nodes_of(cluster, "hello")
    assert reply == {"msg": "Hello Ann"}
    assert with_metadata == {"msg": "Hello Bob", "user": "u1"}
    assert (caught.value.id, caught.value.code) == ("hello", 400)
    assert caught.value.detail == "name must not be empty"
    assert node.metadata["sidecar"] == "http"
    assert node.metadata["http_address"] == app.address


async def test_an_endpoint_on_a_path_the_app_lacks_is_its_404(app: AppProcess) -> None:
    endpoints = [trimicro.sidecar.parse_endpoint("Say.Bye")]
    async with running_sidecar(app, endpoints=endpoints) as (sidecar, cluster):
        await registered(sidecar)
        with pytest.raises(errors.Error) as caught:
            await cluster.client.call("hello", "Say.Bye", {})
    assert caught.value.code == 404
    assert "/say/bye" in caught.value.detail


async def test_an_unhealthy_app_leaves_the_registry_and_comes_back(app: AppProcess) -> None:
    async with running_sidecar(app) as (sidecar, cluster), http_client(sidecar) as http:
        await registered(sidecar)
        assert len(await nodes_of(cluster, "hello")) == 1
        healthy = await http.get("/health")
        app.stop()

        async def gone() -> bool:
            return not await nodes_of(cluster, "hello")

        took = await eventually(gone)
        unhealthy = await http.get("/health")
        app.start()  # the same port again

        async def back() -> bool:
            return len(await nodes_of(cluster, "hello")) == 1

        await eventually(back)
        reply = await cluster.client.call("hello", "Say.Hello", {"name": "Cy"})
    assert took <= INTERVAL + 0.5  # within the health-check interval (plus the drain)
    assert healthy.status_code == 200
    assert healthy.json()["status"] == "ok" and healthy.json()["registered"]
    assert unhealthy.status_code == 503
    assert unhealthy.json()["app"]["status"] == "unhealthy"
    assert not unhealthy.json()["registered"]
    assert reply == {"msg": "Hello Cy"}


async def test_stopping_the_sidecar_deregisters_the_app(app: AppProcess) -> None:
    async with running_sidecar(app) as (sidecar, cluster):
        await registered(sidecar)
        await sidecar.drain()
        left = await nodes_of(cluster, "hello")
    assert left == []


async def test_rpc_calls_python_services_and_the_app(app: AppProcess) -> None:
    async with running_sidecar(app, make_greeter()) as (sidecar, _), http_client(sidecar) as http:
        await registered(sidecar)
        python = await http.post(
            "/rpc", json={"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "A"}}
        )
        looped = await http.post(
            "/rpc", json={"service": "hello", "endpoint": "Say.Hello", "request": {"name": "B"}}
        )
        failed = await http.post(
            "/rpc", json={"service": "hello", "endpoint": "Say.Hello", "request": {"name": ""}}
        )
        bad = await http.post("/rpc", json={"endpoint": "Say.Hello"})
    assert python.json() == {"msg": "Hello A from Python"}
    assert looped.json() == {"msg": "Hello B"}
    assert failed.status_code == 400
    assert failed.json()["detail"] == "name must not be empty"
    assert bad.status_code == 400 and '"service"' in bad.json()["detail"]


RECORD = {
    "name": "legacy",
    "version": "2.0",
    "metadata": {"team": "ruby"},
    "nodes": [{"id": "legacy-1", "address": "127.0.0.1:7000", "metadata": {"protocol": "http"}}],
}


async def test_registry_get_post_delete(app: AppProcess) -> None:
    async with running_sidecar(app) as (sidecar, cluster), http_client(sidecar) as http:
        await registered(sidecar)
        posted = await http.post("/registry", json=RECORD)
        listed = await http.get("/registry")
        one = await http.get("/registry", params={"service": "legacy"})
        missing = await http.get("/registry", params={"service": "nope"})
        registered_nodes = await nodes_of(cluster, "legacy")
        deleted = await http.request("DELETE", "/registry", json=RECORD)
        after = await nodes_of(cluster, "legacy")
        wrong_method = await http.put("/registry", json=RECORD)
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"registered": "legacy", "version": "2.0", "nodes": ["legacy-1"]}
    assert {"hello", "legacy"} <= {record["name"] for record in listed.json()}
    [record] = one.json()
    assert record["version"] == "2.0" and record["metadata"] == {"team": "ruby"}
    assert record["nodes"][0]["address"] == "127.0.0.1:7000"
    assert missing.status_code == 404
    assert [node.id for node in registered_nodes] == ["legacy-1"]
    assert deleted.status_code == 200 and deleted.json()["deregistered"] == "legacy"
    assert after == []
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET, POST, DELETE"


async def test_posted_records_are_deregistered_when_the_sidecar_stops(app: AppProcess) -> None:
    async with open_cluster() as cluster:
        plugins = {"registry": cluster.registry, "transport": cluster.transport}
        async with (
            open_sidecar(
                name="hello", server_address=app.address, address="127.0.0.1:0", **plugins
            ) as sidecar,
            http_client(sidecar) as http,
        ):
            assert (await http.post("/registry", json=RECORD)).status_code == 200
            while_running = await nodes_of(cluster, "legacy")
        after = await nodes_of(cluster, "legacy")
    assert [node.id for node in while_running] == ["legacy-1"]
    assert after == []


def _node(**fields: object) -> dict[str, object]:
    return {"name": "legacy", "nodes": [{"id": "n1", "address": "h:1", **fields}]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{not json", "body:"),
        (b"[1, 2]", "body must be a JSON object"),
        (json.dumps({"nodes": []}).encode(), "record.name: required field missing"),
        (json.dumps({"name": "x", "nodes": []}).encode(), "record.nodes must list"),
        (json.dumps({"name": "a b", "nodes": []}).encode(), "record.name must be"),
        (
            json.dumps({"name": "x", "nodes": [{"id": "n"}]}).encode(),
            "record.nodes[0].address: required field missing",
        ),
        (json.dumps(_node(id=7)).encode(), "record.nodes[0].id: expected string"),
        (json.dumps(_node(address="")).encode(), "record.nodes[0].address must not be empty"),
        (json.dumps(_node(metadata={"k": 1})).encode(), "record.nodes[0].metadata['k']"),
        (json.dumps({"name": "x", "version": 3, "nodes": []}).encode(), "record.version"),
    ],
)
async def test_bad_records_are_400_naming_the_field(
    app: AppProcess, body: bytes, named: str
) -> None:
    async with running_sidecar(app) as (sidecar, _), http_client(sidecar) as http:
        answers = [await http.request(m, "/registry", content=body) for m in ("POST", "DELETE")]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["id"] == "trimicro.sidecar"
        assert named in answer.json()["detail"]


async def test_broker_publish_and_websocket_subscription(app: AppProcess) -> None:
    async with running_sidecar(app) as (sidecar, cluster), http_client(sidecar) as http:
        async with open_websocket(sidecar.address, "/broker?topic=events") as ws:
            published = await http.post("/broker", params={"topic": "events"}, json={"id": 1})
            await cluster.client.publish("events", {"id": 2})  # from a Python service
            with trio.fail_after(5):
                received = [json.loads(await ws.get_message()) for _ in range(2)]
        no_topic = await http.post("/broker", json={"id": 1})
        not_json = await http.post("/broker?topic=events", content=b"{")
        plain_get = await http.get("/broker?topic=events")
    assert published.status_code == 200
    assert published.json() == {"topic": "events", "published": True}
    assert received == [{"id": 1}, {"id": 2}]
    assert no_topic.status_code == 400 and "topic" in no_topic.json()["detail"]
    assert not_json.status_code == 400 and not_json.json()["detail"].startswith("body:")
    assert plain_get.status_code == 405


async def test_published_messages_reach_python_subscribers(app: AppProcess) -> None:
    got: list[object] = []
    service = trimicro.Service("listener")

    @service.subscribe("events")
    async def on_event(message: dict[str, int]) -> None:
        got.append(message)

    async with running_sidecar(app, service) as (sidecar, _), http_client(sidecar) as http:
        assert (await http.post("/broker?topic=events", json={"n": 5})).status_code == 200

        async def arrived() -> bool:
            return bool(got)

        await eventually(arrived)
    assert got == [{"n": 5}]


async def test_websocket_without_a_topic_is_refused(app: AppProcess) -> None:
    from trio_websocket import ConnectionRejected

    async with running_sidecar(app) as (sidecar, _):
        with pytest.raises(ConnectionRejected) as caught:
            async with open_websocket(sidecar.address, "/broker"):
                pass
    assert caught.value.status_code == 400


async def test_streaming_calls_over_a_websocket_on_rpc(app: AppProcess) -> None:
    counter = trimicro.Service("counter")

    @counter.stream_endpoint("Count.Up")
    async def up(req: dict[str, int], stream: trimicro.Stream[None]) -> None:
        for i in range(req["to"]):
            await stream.send({"n": i})

    async with running_sidecar(app, counter) as (sidecar, _):
        query = '/rpc?service=counter&endpoint=Count.Up&request={"to":3}'
        async with open_websocket(sidecar.address, query) as ws:
            with trio.fail_after(5):
                replies = [json.loads(await ws.get_message()) for _ in range(3)]
    assert replies == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_rpc_goes_through_a_proxy_to_another_site(app: AppProcess) -> None:
    """With `proxy=` (`--proxy`, `TRIMICRO_PROXY`) the app reaches services of other sites."""
    from ..gateway.test_through_proxy import _two_sites

    async with (
        _two_sites(),
        running_sidecar(
            app, registry="memory://site-a", transport="tcp://", proxy="trimicro.proxy"
        ) as (sidecar, _),  # fmt: skip
        http_client(sidecar) as http,
    ):
        far = await http.post(
            "/rpc", json={"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "C"}}
        )
    assert far.status_code == 200, far.text
    assert far.json() == {"msg": "Hello C", "hops": "1"}
