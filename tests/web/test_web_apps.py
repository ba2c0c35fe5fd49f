"""The dashboard serves web apps as micro web does: `/<name>/...` goes to the registered
service `trimicro.web.<name>` (HTTP and websockets); the dashboard's own pages keep theirs."""

from __future__ import annotations

import httpx

from trimicro.gateway._proxy import open_websocket
from trimicro.web import open_dashboard

from ..gateway.test_proxy import backend_registered
from .conftest import _TLS


async def test_web_apps_are_proxied_under_their_name() -> None:
    registry = "memory://web-apps"
    async with (
        open_dashboard(address="127.0.0.1:0", registry=registry, transport="tcp://") as dashboard,
        backend_registered(registry, "trimicro.web.notes"),
        httpx.AsyncClient(base_url=dashboard.url, trust_env=False, verify=_TLS) as http,
    ):
        page = await http.post("/notes/list?tag=x", content=b"hello")
        missing = await http.get("/nobody/x")
        own = await http.get("/api/services")
        async with open_websocket(dashboard.address, "/notes/live") as ws:
            await ws.send_message("hi")
            echoed = await ws.get_message()
    assert page.status_code == 207  # the app's own status and headers...
    assert page.headers["x-backend"] == "echo"
    assert "content-security-policy" not in page.headers  # ...not the dashboard's policy
    seen = page.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("POST", "/list", "tag=x")
    assert seen["headers"]["x-trimicro-web-base-path"] == "/notes"
    assert seen["length"] == 5
    assert echoed == "/live:hi"
    assert missing.status_code == 404
    assert "trimicro.web.nobody not found" in missing.text
    assert own.status_code == 200 and "content-security-policy" in own.headers
    assert any(s["name"] == "trimicro.web.notes" for s in own.json())
