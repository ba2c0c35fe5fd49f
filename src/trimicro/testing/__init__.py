"""Test helpers: in-memory clusters, the transport conformance suite, fault injection.

Beside the stack: it may import all of trimicro; nothing in trimicro imports it.
"""

from ._cluster import Cluster as Cluster
from ._cluster import open_cluster as open_cluster

__all__ = ["Cluster", "open_cluster"]
