"""The tunnel: many virtual sessions over a few links between nodes (DESIGN.md §6).

A sans-io core (`_core.py`, with `_messages`, `_link`, `_events`, `_auth`) and its trio
driver (`open_tunnel`). docs/tunnel.md describes the messages, timers and modes.
"""

from ._core import TunnelCore as TunnelCore
from ._core import TunnelOptions as TunnelOptions
from ._core import TunnelStatistics as TunnelStatistics
from ._driver import DialError as DialError
from ._driver import Tunnel as Tunnel
from ._driver import open_tunnel as open_tunnel
from ._link import LinkStatistics as LinkStatistics
from ._messages import Mode as Mode
from ._session import TunnelListener as TunnelListener
from ._session import TunnelSession as TunnelSession
from ._transport import TunnelConnection as TunnelConnection
from ._transport import TunnelTransport as TunnelTransport

__all__ = [
    "DialError",
    "LinkStatistics",
    "Mode",
    "Tunnel",
    "TunnelConnection",
    "TunnelCore",
    "TunnelListener",
    "TunnelOptions",
    "TunnelSession",
    "TunnelStatistics",
    "TunnelTransport",
    "open_tunnel",
]
