"""The shaped links of `trimicro.testing` (delay, black hole, send filter, partition side)."""

from __future__ import annotations

from trimicro.testing._shaped import ARRIVAL, Shape, ShapedConnection, ShapedTransport

__all__ = ["ARRIVAL", "Shape", "ShapedConnection", "ShapedTransport"]
