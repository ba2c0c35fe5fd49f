"""The web dashboard (`trimicro web`): see and call the services in a browser.

Services and their nodes, metadata and endpoint schemas; a call form per endpoint filled
with a JSON template from the schema; the services list kept live over a websocket from
registry watch events; the network pages when given a network node (`NetworkView`).
Plain HTML with a little JavaScript and CSS shipped in `static/`; no build step.
docs/web.md has the details.

Example::

    from trimicro.web import open_dashboard

    async with open_dashboard(address="127.0.0.1:8082") as dashboard:
        await trio.sleep_forever()
"""

from ._app import WEB_ID as WEB_ID
from ._app import DashboardApp as DashboardApp
from ._app import web_limits as web_limits
from ._feed import RegistryFeed as RegistryFeed
from ._network import NetworkView as NetworkView
from ._network import NodeView as NodeView
from ._serve import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from ._serve import Dashboard as Dashboard
from ._serve import open_dashboard as open_dashboard
from ._serve import serve_dashboard as serve_dashboard

__all__ = [
    "DEFAULT_ADDRESS",
    "WEB_ID",
    "Dashboard",
    "DashboardApp",
    "NetworkView",
    "NodeView",
    "RegistryFeed",
    "open_dashboard",
    "serve_dashboard",
    "web_limits",
]
