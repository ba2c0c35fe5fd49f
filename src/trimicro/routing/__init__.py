"""Routing: the table built from the registry, adverts between routers, flap damping.

The sans-io core (`Route`, `Table`, `FlapDamper`, `RouterCore`, the strategies and the wire
format) imports no I/O; `open_router` drives it on trio. See docs/routing.md.

    async with open_router(registry, id="r-1", rng=random.Random()) as router:
        routes = router.lookup("greeter")       # cheapest first
"""

from ._advert import ADVERTISE_EVENTS_INTERVAL as ADVERTISE_EVENTS_INTERVAL
from ._advert import ADVERTISE_TABLE_INTERVAL as ADVERTISE_TABLE_INTERVAL
from ._advert import DEFAULT_ADVERT_TTL as DEFAULT_ADVERT_TTL
from ._advert import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._advert import Advert as Advert
from ._advert import AdvertLimits as AdvertLimits
from ._advert import AdvertType as AdvertType
from ._core import DEFAULT_NETWORK as DEFAULT_NETWORK
from ._core import RouterCore as RouterCore
from ._core import RouterStatistics as RouterStatistics
from ._flap import DEFAULT_DAMPING as DEFAULT_DAMPING
from ._flap import DampingParams as DampingParams
from ._flap import FlapDamper as FlapDamper
from ._flap import FlapState as FlapState
from ._route import DEFAULT_LINK as DEFAULT_LINK
from ._route import GATEWAY_METRIC as GATEWAY_METRIC
from ._route import LOCAL_METRIC as LOCAL_METRIC
from ._route import MAX_METRIC as MAX_METRIC
from ._route import Route as Route
from ._router import Router as Router
from ._router import RouteWatcher as RouteWatcher
from ._router import open_router as open_router
from ._strategy import Strategy as Strategy
from ._strategy import best_routes as best_routes
from ._table import ANY as ANY
from ._table import EventType as EventType
from ._table import RouteEvent as RouteEvent
from ._table import RouteExists as RouteExists
from ._table import RouteNotFound as RouteNotFound
from ._table import RoutingError as RoutingError
from ._table import Table as Table
from ._table import TableWatcher as TableWatcher
from ._table import WatchOverflowed as WatchOverflowed
from ._wire import MalformedAdvert as MalformedAdvert
from ._wire import advert_from_wire as advert_from_wire
from ._wire import advert_to_wire as advert_to_wire
from ._wire import decode_advert as decode_advert
from ._wire import encode_advert as encode_advert

__all__ = [
    "ADVERTISE_EVENTS_INTERVAL",
    "ADVERTISE_TABLE_INTERVAL",
    "ANY",
    "DEFAULT_ADVERT_TTL",
    "DEFAULT_DAMPING",
    "DEFAULT_LIMITS",
    "DEFAULT_LINK",
    "DEFAULT_NETWORK",
    "GATEWAY_METRIC",
    "LOCAL_METRIC",
    "MAX_METRIC",
    "Advert",
    "AdvertLimits",
    "AdvertType",
    "DampingParams",
    "EventType",
    "FlapDamper",
    "FlapState",
    "MalformedAdvert",
    "Route",
    "RouteEvent",
    "RouteExists",
    "RouteNotFound",
    "RouteWatcher",
    "Router",
    "RouterCore",
    "RouterStatistics",
    "RoutingError",
    "Strategy",
    "Table",
    "TableWatcher",
    "WatchOverflowed",
    "advert_from_wire",
    "advert_to_wire",
    "best_routes",
    "decode_advert",
    "encode_advert",
    "open_router",
]
