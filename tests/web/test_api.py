"""The dashboard's JSON endpoints and pages over plain HTTP (no browser)."""

from __future__ import annotations

import json

from .conftest import XSS, http_client, make_greeter, running_dashboard


async def test_services_lists_names_and_versions() -> None:
    async with running_dashboard(make_greeter(), make_greeter("other", "2.0")) as site:
        async with http_client(site) as http:
            response = await http.get("/api/services")
    assert response.status_code == 200
    assert response.json() == [
        {"name": "greeter", "versions": ["1.0.0"]},
        {"name": "other", "versions": ["2.0"]},
    ]


async def test_service_record_has_nodes_schemas_and_templates() -> None:
    async with running_dashboard(make_greeter()) as site:
        async with http_client(site) as http:
            response = await http.get("/api/service/greeter")
    [record] = response.json()
    assert record["name"] == "greeter" and record["version"] == "1.0.0"
    assert record["metadata"] == {"team": "core", "note": XSS}
    [node] = record["nodes"]
    assert node["address"].startswith("127.0.0.1:")
    assert node["metadata"]["transport"] == "tcp"
    hello = next(e for e in record["endpoints"] if e["name"] == "Say.Hello")
    assert hello["request"]["properties"] == {"name": {"type": "string"}}
    assert hello["response"]["properties"] == {"msg": {"type": "string"}}
    assert hello["template"] == {"name": ""}


async def test_unknown_service_is_404_json_and_404_page() -> None:
    async with running_dashboard() as site:
        async with http_client(site) as http:
            api = await http.get("/api/service/nobody")
            page = await http.get("/service/nobody")
    assert api.status_code == 404
    assert api.json()["id"] == "trimicro.web"
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "service nobody not found" in page.text


async def test_call_returns_the_reply() -> None:
    async with running_dashboard(make_greeter()) as site:
        async with http_client(site) as http:
            body = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": "Ann"}}
            response = await http.post("/api/call", json=body)
    assert response.status_code == 200
    assert response.json() == {"msg": "Hello Ann"}


async def test_call_errors_keep_their_status() -> None:
    async with running_dashboard(make_greeter()) as site:
        async with http_client(site) as http:
            hello = {"service": "greeter", "endpoint": "Say.Hello", "request": {"name": ""}}
            bad = await http.post("/api/call", json=hello)
            stall = {"service": "greeter", "endpoint": "Say.Stall", "timeout": 0.2}
            slow = await http.post("/api/call", json=stall)
            missing = await http.post("/api/call", json={"service": "nobody", "endpoint": "X.Y"})
            malformed = await http.post("/api/call", json={"service": "greeter"})
    assert bad.status_code == 400
    assert bad.json()["detail"] == "name must not be empty"
    assert bad.json()["id"] == "greeter"
    assert slow.status_code == 408
    assert missing.status_code >= 500
    assert malformed.status_code == 400
    assert '"endpoint"' in malformed.json()["detail"]


async def test_call_refuses_other_sites_forms_and_oversize_bodies() -> None:
    async with running_dashboard(make_greeter()) as site:
        body = json.dumps({"service": "greeter", "endpoint": "Say.Hello", "request": {}})
        async with http_client(site) as http:
            json_type = {"content-type": "application/json"}
            evil = {**json_type, "origin": "http://evil.example"}
            cross = await http.post("/api/call", content=body, headers=evil)
            own = {**json_type, "origin": site.url}
            same = await http.post("/api/call", content=body, headers=own)
            plain = {"content-type": "text/plain"}
            form = await http.post("/api/call", content=body, headers=plain)
            big = await http.post("/api/call", json={"service": "g", "endpoint": "x" * 2_000_000})
            get = await http.get("/api/call")
    assert cross.status_code == 403
    assert same.status_code == 400  # passed the origin check; the service wants a name
    assert form.status_code == 415
    assert big.status_code == 413
    assert get.status_code == 405


async def test_pages_escape_registry_data_and_send_a_strict_policy() -> None:
    async with running_dashboard(make_greeter()) as site:
        async with http_client(site) as http:
            page = await http.get("/service/greeter")
            home = await http.get("/")
    assert page.status_code == 200
    assert XSS not in page.text
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in page.text
    assert 'data-endpoint="Say.Hello"' in page.text
    assert "a streaming endpoint" in page.text  # Say.Count gets no call form
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<li data-name="greeter"><a href="/service/greeter">greeter</a>' in home.text


async def test_static_files_are_served_from_the_package_only() -> None:
    async with running_dashboard() as site:
        async with http_client(site) as http:
            script = await http.get("/static/dashboard.js")
            style = await http.get("/static/dashboard.css")
            escape = await http.get("/static/../_app.py")
            unknown = await http.get("/static/nothing.js")
    assert script.status_code == 200 and "text/javascript" in script.headers["content-type"]
    assert "/ws/registry" in script.text
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    assert escape.status_code == 404 and unknown.status_code == 404


async def test_network_page_says_not_connected_without_a_node() -> None:
    async with running_dashboard() as site:
        async with http_client(site) as http:
            page = await http.get("/network")
    assert page.status_code == 200
    assert "not connected to a network node" in page.text
