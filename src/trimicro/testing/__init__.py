"""Test helpers: in-memory clusters, the transport conformance suite, fault injection.

Beside the stack: it may import all of trimicro; nothing in trimicro imports it.
"""

from ._cluster import Cluster as Cluster
from ._cluster import open_cluster as open_cluster
from ._conformance import CHECKS as CHECKS
from ._conformance import check_transport as check_transport
from ._network import SimulatedNetwork as SimulatedNetwork
from ._network import open_simulated_network as open_simulated_network
from ._network import random_topology as random_topology

__all__ = [
    "CHECKS",
    "Cluster",
    "SimulatedNetwork",
    "check_transport",
    "open_cluster",
    "open_simulated_network",
    "random_topology",
]
